"""Progress bars appear on a terminal for compiles and emulations, never in captured output."""

import numpy as np

import nmc
import nmc.progress as progress


def test_compile_and_run_drive_the_bars(monkeypatch, capsys):
    from ir.random_graphs import random_loihi_graph

    seen = []
    real = progress.Progress

    class Spy(real):
        def update(self, done):
            seen.append((self.label, done, self.total))
            super().update(done)

    monkeypatch.setattr(progress, "Progress", Spy)
    g = next(h for k in range(20) if len((h := random_loihi_graph(k)).inputs) == 1)
    compiled = nmc.compile(g, "loihi")
    labels = [s[0] for s in seen]
    assert labels and all(lbl == "compile for loihi" for lbl in labels)
    assert seen[-1][1] >= 3  # at least partition, place, route ran
    from nmc.dist import evaluate

    bar = Spy("emulate", 6)
    evaluate(compiled.image, np.zeros((6, 5, *g.inputs[0].shape), np.uint8), batch_size=2,
             progress=bar)
    assert [s[1] for s in seen if s[0] == "emulate"] == [2, 4, 6]
    assert capsys.readouterr().err == ""  # not a terminal: nothing drawn
