import io

from nmc.progress import Progress, enabled, set_quiet


def test_bar_draws_when_forced():
    s = io.StringIO()
    with Progress("emulate", 4, stream=s, width=4, force=True) as p:
        p(2, 4)
    out = s.getvalue()
    assert out.startswith("\remulate [##..] 2/4 ") and out.endswith(" s\n")


def test_silent_off_terminal_and_when_quiet(monkeypatch):
    s = io.StringIO()  # not a tty
    with Progress("x", 3, stream=s) as p:
        p.update(1)
    assert s.getvalue() == ""
    set_quiet(True)
    try:
        assert not enabled()
    finally:
        set_quiet(False)
