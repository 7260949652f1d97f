"""Regenerate the results tables of the examples' READMEs from their ``results.json`` files.

Every ``examples/<rule>/train.py`` writes ``results.json``::

    {"example": "ann_conversion", "train_seconds": 6.2,
     "models": [{"file": "model.json", "network": "...", "rule": "...", "dataset": "...",
                 "encoding": "...", "steps": 32, "readout": "spike count",
                 "reference_label": "ANN (ReLU, float)", "reference_accuracy": 0.972,
                 "snn_accuracy": 0.969,          # train.py's own simulation (IR semantics)
                 "interp_accuracy": 0.969,       # model file via nmc loader + run_float, or null
                 "chip": {"loihi": 0.96},        # optional, filled in by chip-level runs
                 "sweep": {"16": 0.97, ...}}]}   # optional: accuracy by number of steps

This script rewrites the text between ``<!-- results:begin -->`` and ``<!-- results:end -->`` in
``examples/README.md`` and the project README (one row per model of every example) and in each
example's README.md (its own models), and the chip table (``examples/chip_results.json``, written
by ``chips.py``) between ``<!-- chips:begin -->`` and ``<!-- chips:end -->``. Run: ``python3 examples/make_tables.py`` (``--check`` exits 1 if a README is
out of date, without writing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
CHIPS_BEGIN, CHIPS_END = "<!-- chips:begin -->", "<!-- chips:end -->"
CHIP_RESULTS = HERE / "chip_results.json"  # written by chips.py
FAMILIES = ("loihi", "truenorth", "brainscales2")
ORDER = ("ann_conversion", "surrogate_gradient", "tempotron", "stdp", "eprop", "ttfs")


def pct(v: float | None) -> str:
    """An accuracy as a percentage with one decimal, or a dash when unknown."""
    return "—" if v is None else f"{100 * v:.1f}%"


def load_chip_rows(path: Path = CHIP_RESULTS) -> dict[tuple[str, str], dict]:
    """chips.py's rows by (model folder, target); empty when chips.py has not been run."""
    if not path.exists():
        return {}
    return {(r["model"], r["target"]): r for r in json.loads(path.read_text())}


def model_folder(example: str, file: str) -> str:
    """``("ann_conversion", "mlp/model.json") -> "ann_conversion/mlp"``."""
    parent = Path(file).parent.as_posix()
    return example if parent in ("", ".") else f"{example}/{parent}"


def chip_cell(chips: dict, folder: str, family: str, fallback: float | None) -> str:
    row = chips.get((folder, family))
    if row is None:
        return pct(fallback)
    if not row.get("fits"):
        return "does not fit (see below)"
    return pct(row["chip_accuracy"])


def chip_table(chips: dict) -> str:
    """Every (model, family): accuracy on the chip vs float on the same samples, cores, work and
    energy per inference, ticks and compile time; and why a family refuses a model."""
    head = ["model", "family", "samples", "float", "chip", "cores", "synaptic ops / inference",
            "energy / inference", "ticks", "compile s"]
    rows, refused = [], []
    for (folder, fam), r in chips.items():
        if not r.get("fits"):
            refused.append(f"- `{folder}` on **{fam}**: {r['reason']}")
            continue
        e = r.get("energy_per_sample_j")
        label = f"{fam} (`{r['options']}`)" if r.get("options") else fam
        rows.append([f"`{folder}`", label, str(r["samples"]), pct(r["float_accuracy"]),
                     pct(r["chip_accuracy"]), str(r.get("cores")),
                     f"{r.get('synaptic_ops_per_sample', 0):.0f}",
                     "—" if e is None else f"{e * 1e6:.3g} µJ", str(r.get("ticks")),
                     str(r.get("compile_s"))])
    text = render(head, rows)
    if refused:
        text += ("\n\nWhere a family cannot hold a model, the compiler's design-rule message "
                 "says why and what to change:\n\n" + "\n".join(refused))
    return text


def load_results(root: Path = HERE) -> list[dict]:
    """All results.json files under ``root``, in the order of the examples list."""
    found = {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/results.json")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return [found[n] for n in names]


def overview_table(results: list[dict], chips: dict | None = None) -> str:
    """The table of examples/README.md: every model of every example."""
    head = [
        "example",
        "model",
        "rule",
        "network",
        "reference",
        "SNN (train.py)",
        "float interpreter",
        *FAMILIES,
    ]
    rows = []
    for r in results:
        for m in r["models"]:
            chip = m.get("chip", {})
            folder = model_folder(r["example"], m["file"])
            rows.append(
                [
                    f"[{r['example']}]({r['example']}/)",
                    f"`{m['file']}`",
                    m["rule"],
                    m["network"],
                    f"{m['reference_label']}: {pct(m['reference_accuracy'])}"
                    if m.get("reference_accuracy") is not None
                    else "—",
                    pct(m["snn_accuracy"]),
                    pct(m.get("interp_accuracy")),
                    *(chip_cell(chips or {}, folder, f, chip.get(f)) for f in FAMILIES),
                ]
            )
    return render(head, rows)


def example_table(r: dict, chips: dict | None = None) -> str:
    """The table of one example's README.md."""
    head = [
        "model",
        "network",
        "data",
        "encoding",
        "steps",
        "readout",
        "reference",
        "SNN (train.py)",
        "float interpreter",
        *FAMILIES,
    ]
    rows = []
    for m in r["models"]:
        chip = m.get("chip", {})
        rows.append(
            [
                f"`{m['file']}`",
                m["network"],
                m["dataset"],
                m["encoding"],
                str(m["steps"]),
                m["readout"],
                f"{m['reference_label']}: {pct(m['reference_accuracy'])}"
                if m.get("reference_accuracy") is not None
                else "—",
                pct(m["snn_accuracy"]),
                pct(m.get("interp_accuracy")),
                *(chip_cell(chips or {}, model_folder(r["example"], m["file"]), f, chip.get(f))
                  for f in FAMILIES),
            ]
        )
    text = render(head, rows)
    own = {k: v for k, v in (chips or {}).items()
           if k[0] == r["example"] or k[0].startswith(r["example"] + "/")}
    if own:
        text += "\n\nOn the chips (held test samples; `python3 examples/chips.py`):\n\n"
        text += chip_table(own)
    sweeps = [m for m in r["models"] if m.get("sweep")]
    if sweeps:
        steps = sorted({int(k) for m in sweeps for k in m["sweep"]})
        srows = [[f"`{m['file']}`", *(pct(m["sweep"].get(str(s))) for s in steps)] for m in sweeps]
        text += "\n\nAccuracy by number of simulated steps (train.py's simulation):\n\n"
        text += render(["model", *(f"{s} steps" for s in steps)], srows)
    text += f"\n\nTraining time: {r['train_seconds']} s (2 cores)."
    return text


def render(head: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def splice(text: str, table: str, where: Path, begin: str = BEGIN, end: str = END) -> str:
    """Replace the part between the markers by ``table``."""
    BEGIN, END = begin, end  # noqa: N806 - the markers this call replaces between
    if BEGIN not in text or END not in text:
        raise SystemExit(
            f"{where}: markers {BEGIN} ... {END} not found; add them where the table goes"
        )
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    return f"{pre}{BEGIN}\n{table}\n{END}{post}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a README is out of date")
    args = ap.parse_args(argv)
    results = load_results()
    chips = load_chip_rows()
    targets = [(HERE / "README.md", overview_table(results, chips)),
               (HERE.parent / "README.md", overview_table(results, chips).replace(
                   "](", "](examples/"))]
    targets += [(HERE / r["example"] / "README.md", example_table(r, chips)) for r in results]
    stale = []
    for path, table in targets:
        old = path.read_text()
        new = splice(old, table, path)
        if path in (HERE / "README.md", HERE.parent / "README.md") and chips:
            if CHIPS_BEGIN not in new:
                new = new.rstrip("\n") + f"\n\n## On the chips\n\n{CHIPS_BEGIN}\n{CHIPS_END}\n"
            new = splice(new, chip_table(chips), path, CHIPS_BEGIN, CHIPS_END)
        if new != old:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    for p in stale:
        print(f"{'out of date' if args.check else 'updated'}: {p.relative_to(HERE.parent)}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
