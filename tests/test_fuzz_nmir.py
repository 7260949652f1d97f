"""Fuzzing the ``.nmir`` parser: any text gives a ParseError (or another NmcError) or a graph.

Seeds: the golden files in ``tests/data/golden/`` (every stage, every dtype, a sidecar) and the
text of seeded random graphs (``ir.random_graphs``). A case applies one to four mutations: a byte
flipped, inserted or deleted, the text truncated, a line deleted, duplicated or moved, a number
token replaced by a nasty one (``1e999``, ``-0``, ``nan``, ``99999999999999999999``), a name
replaced by a keyword or a kind, a chunk copied elsewhere. Cases that use the sidecar get it
intact or with damaged bytes.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_robustness import failure_of

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES_CI = 300
"""Cases in CI."""

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
NASTY_NUMBERS = ["0", "-1", "1e999", "-0", "nan", "inf", "-inf", "99999999999999999999",
                 "1e-400", "0.5", "2147483648", "-9223372036854775809", "18446744073709551616",
                 "1000000000000", "3"]
WORDS = ["node", "const", "graph", "nmir", "attrs", "mapping", "stage", "dt", "true", "null",
         "LIF", "Input", "Output", "Dense", "LoihiDense", "shape", "f32", "i8", "u64", "sha256",
         "float", "routed", "x", "@x", "->", "=", "[", "]", "{", "}", "(", ")", ",", ":", '"']


_ARRAYS: dict[str, dict] = {}
"""The constants of the random-graph seeds (their sidecar, given to the parser as a mapping)."""


def seeds() -> dict[str, str]:
    """Name -> canonical text: the golden files and a few seeded random graphs."""
    from ir.text import print_graph

    out = {p.name: p.read_text(encoding="utf-8") for p in sorted(GOLDEN.glob("*.nmir"))}
    try:
        from ir.random_graphs import random_float_graph, random_loihi_graph

        for s in range(3):
            for kind, make in (("float", random_float_graph), ("loihi", random_loihi_graph)):
                g = make(s)
                out[f"random_{kind}_{s}"] = print_graph(g)
                _ARRAYS[f"random_{kind}_{s}"] = dict(g.constants)
    except ImportError:  # pragma: no cover - generators are optional
        pass
    return out


def sidecar_of(name: str):
    """What the parser gets as the sidecar of seed ``name``: a path, a mapping or None."""
    npz = GOLDEN / (Path(name).stem + ".npz")
    if npz.is_file():
        return npz
    return _ARRAYS.get(name)


def mutate_text(text: str, rnd: random.Random) -> str:
    """One to four text mutations (see the module doc)."""
    for _ in range(rnd.randint(1, 4)):
        if not text:
            break
        op = rnd.randrange(9)
        i = rnd.randrange(len(text))
        lines = text.split("\n")
        if op == 0:
            text = text[:i] + chr(rnd.choice([0, 9, 10, 13, 32, 34, 64, 0xFEFF, 0xE9, 0x7F,
                                               rnd.randrange(32, 127)])) + text[i + 1:]
        elif op == 1:
            text = text[:i] + rnd.choice(WORDS) + text[i:]
        elif op == 2:
            text = text[:i] + text[i + rnd.randint(1, 20):]
        elif op == 3:
            text = text[:i]
        elif op == 4 and len(lines) > 1:
            del lines[rnd.randrange(len(lines))]
            text = "\n".join(lines)
        elif op == 5 and lines:
            k = rnd.randrange(len(lines))
            lines.insert(rnd.randrange(len(lines) + 1), lines[k])
            text = "\n".join(lines)
        elif op == 6:
            nums = list(_NUMBER.finditer(text))
            if nums:
                m = rnd.choice(nums)
                text = text[:m.start()] + rnd.choice(NASTY_NUMBERS) + text[m.end():]
        elif op == 7:
            names = list(_NAME.finditer(text))
            if names:
                m = rnd.choice(names)
                other = rnd.choice(names).group() if rnd.random() < 0.5 else rnd.choice(WORDS)
                text = text[:m.start()] + other + text[m.end():]
        else:
            j = rnd.randrange(len(text))
            text = text[:i] + text[j:j + rnd.randint(1, 80)] + text[i:]
    return text


_SEEDS: dict[str, str] | None = None
_SCRATCH: Path | None = None


def _seeds() -> dict[str, str]:
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = seeds()
    return _SEEDS


def nmir_case(name: str, rnd: random.Random) -> str | None:
    """Mutate the seed ``name`` and parse it (with its sidecar, intact or damaged); the failure
    or None."""
    global _SCRATCH
    from ir.text import parse

    text = mutate_text(_seeds()[name], rnd)
    sidecar = sidecar_of(name)
    npz = GOLDEN / (Path(name).stem + ".npz")
    if npz.is_file():
        if _SCRATCH is None:
            _SCRATCH = Path(tempfile.mkdtemp(prefix="nmc_fuzz_nmir_"))
        sidecar = _SCRATCH / npz.name
        shutil.copyfile(npz, sidecar)
        if rnd.random() < 0.3:
            data = bytearray(sidecar.read_bytes())
            for _ in range(rnd.randint(1, 6)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            if rnd.random() < 0.3:
                data = data[: rnd.randrange(len(data))]
            sidecar.write_bytes(bytes(data))
    return failure_of(parse, text, filename=name, sidecar=sidecar)


def _strategy() -> st.SearchStrategy:
    return st.tuples(st.sampled_from(sorted(_seeds())), st.randoms(use_true_random=True))


FORMATS = {"nmir": (st.deferred(_strategy), lambda case: nmir_case(case[0], case[1]))}
"""For bench/fuzz.py: format -> (strategy, case function returning a failure or None)."""


def test_seeds_parse():
    """The unmutated seeds parse (else every fuzz case would stop at the first error)."""
    from ir.text import parse

    for name, text in _seeds().items():
        parse(text, filename=name, sidecar=sidecar_of(name))


def test_fuzz_nmir_parser():
    pytest.importorskip("ir.text")

    @settings(max_examples=CASES_CI, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_strategy())
    def run(case) -> None:
        failure = nmir_case(*case)
        assert failure is None, failure

    run()


def test_forged_sidecar_header_is_refused(tmp_path: Path):
    """A sidecar member whose header claims 8 TB, for a constant the text declares f64[20]:
    the parser must refuse it from the header (a ParseError), not allocate it."""
    import zipfile

    import numpy as np

    from ir.errors import NmcError
    from ir.text import parse

    case = Path(__file__).parent / "data" / "bad" / "nmir" / "sidecar_hash_mismatch"
    sidecar = tmp_path / "model.npz"
    with zipfile.ZipFile(sidecar, "w") as z, z.open("big.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 64)
    with pytest.raises(NmcError, match=r"^model\.nmir:4:"):
        try:
            parse((case / "model.nmir").read_text(), filename="model.nmir", sidecar=sidecar)
        except MemoryError as e:
            pytest.fail(f"MemoryError: {e}")
