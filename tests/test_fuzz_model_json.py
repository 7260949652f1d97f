"""Fuzzing the model.json frontend: any document gives a user error or a graph, nothing else.

Two kinds of cases:

* structured: a Hypothesis strategy builds near-valid model documents (inputs, populations of
  every registered neuron kind with parameters drawn from each kind's fields, connections of every
  type with weights whose shapes are mostly right, delays, outputs), then mutates some of them
  (delete a key, replace a value by arbitrary JSON, duplicate an item). Weight references point at
  a folder of files both good and bad (a header that claims 8 TB, a truncated ``.npy``, a corrupt
  ``.npz``, a pickle, a text file);
* raw: the committed good models in ``tests/data/models/`` with their bytes mutated (flips,
  insertions, deletions, truncation, a number token replaced by a nasty one), or with one of their
  weight files' bytes mutated.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_robustness import failure_of

MODELS = Path(__file__).parent / "data" / "models"
GOOD_MODELS = sorted(p.name for p in MODELS.iterdir() if (p / "model.json").is_file())
CASES_CI = 150
"""Cases per test in CI (structured 150, raw 150: 300 for model.json)."""

CONNECTION_TYPES = ["dense", "sparse", "conv2d", "conv1d", "sumpool2d", "avgpool2d", "identity"]


# ------------------------------------------------------------------------------------------
# The folder of weight files (good and bad) that structured documents refer to
# ------------------------------------------------------------------------------------------
def make_weight_folder(folder: Path) -> Path:
    """Weight files a fuzzed document may name: good ones and each kind of bad one."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "w34.npy", np.arange(12, dtype=np.float64).reshape(3, 4) / 10)
    np.save(folder / "ints.npy", np.arange(6, dtype=np.int32))
    np.savez(folder / "w.npz", a=np.ones((2, 3)), b=np.zeros(4), c=np.array([np.nan, 1.0]))
    np.save(folder / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(folder / "strs.npy", np.array(["a", "b"]))
    # A header claiming [1000000, 1000000] float64 (8 TB) in front of 16 bytes of data.
    with open(folder / "huge.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 16)
    good = (folder / "w34.npy").read_bytes()
    (folder / "trunc.npy").write_bytes(good[: len(good) - 40])
    (folder / "notnpy.npy").write_bytes(b"hello, not an array\n")
    zbytes = (folder / "w.npz").read_bytes()
    (folder / "corrupt.npz").write_bytes(zbytes[:30] + b"\xff" * 50 + zbytes[80:])
    (folder / "text.txt").write_text("1 2 3\n")
    return folder


FILES = ["w34.npy", "ints.npy", "w.npz", "obj.npy", "strs.npy", "huge.npy", "trunc.npy",
         "notnpy.npy", "corrupt.npz", "text.txt", "missing.npy", "../outside.npy", "/abs.npy",
         "sub/../w34.npy"]


# ------------------------------------------------------------------------------------------
# Structured strategy
# ------------------------------------------------------------------------------------------
def _neuron_kinds() -> dict[str, tuple[str, list[tuple[str, dict]]]]:
    """Neuron kind -> (family, [(parameter, spec metadata)]), from the registry."""
    import ir.native  # noqa: F401  (registers the native kinds)
    from ir.nodes import field_specs, node_kinds

    out = {}
    for k, c in sorted(node_kinds().items()):
        if c.category != "neuron":
            continue
        required = {f.name for f in dataclasses.fields(c) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}
        out[k] = (c.family, [(f, {**md, "required": f in required})
                             for f, md in field_specs(c) if f != "shape"])
    return out


KINDS = _neuron_kinds()
FAMILIES = sorted({fam for fam, _ in KINDS.values()})

numbers = st.one_of(
    st.integers(-3, 5),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, 0.001, 0.02, 1.0, -1e-9, 1e308, -1e308, 5e-324, 2**53, 2**64, 10**30]),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8),
                         st.sampled_from(["zero", "subtract", "v_reset", "dense", "x", "h0"]))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10,
)
file_refs = st.builds(
    lambda f, k: {"file": f, **({"key": k} if k is not None else {})},
    st.sampled_from(FILES), st.sampled_from([None, None, None, "a", "b", "c", "zz", ""]),
)
good_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3)
bad_shapes = st.sampled_from([[], [0], [-1], [10**12], [2**70], [1.5], ["3"], [10**6, 10**6]])
shapes = st.one_of(good_shapes, good_shapes, good_shapes, good_shapes, bad_shapes)


def nested(shape: list[int], values=numbers) -> st.SearchStrategy:
    """A nested list of numbers of ``shape`` (shapes kept small)."""
    if not shape:
        return values
    if any(not isinstance(s, int) or not 0 <= s <= 64 for s in shape) or _flat(shape) > 64:
        return st.lists(values, max_size=3)  # a size that cannot be drawn: a wrong one instead
    return st.lists(nested(shape[1:], values), min_size=shape[0], max_size=shape[0])


def _flat(shape: Any) -> int:
    try:
        n = 1
        for s in shape:
            n *= int(s)
        return n
    except (TypeError, ValueError):
        return 1


def _small(shape: Any) -> list[int] | None:
    """The shape when it is small enough to draw a nested list for, else None."""
    if (isinstance(shape, list) and shape and all(isinstance(s, int) and 0 < s <= 6 for s in shape)
            and _flat(shape) <= 64):
        return shape
    return None


def good_value(md: dict) -> st.SearchStrategy:
    """A value the field's spec() metadata admits (mostly), for near-valid documents."""
    k = md["kind"]
    if md["choices"]:
        return st.sampled_from(list(md["choices"]))
    if k == "bool":
        return st.booleans()
    if k == "str":
        return st.sampled_from(["zero", "subtract", "v_reset"])
    if k in ("shape", "ints"):
        return st.lists(st.integers(1, 3), min_size=1, max_size=2)
    lo = md["lo"] if md["lo"] is not None else (0 if md["nonneg"] or md["positive"] else -2)
    hi = md["hi"] if md["hi"] is not None else 2
    if k == "int" or md["integer"]:
        lo, hi = int(math.ceil(lo)) + (1 if md["positive"] and lo <= 0 else 0), int(hi)
        return st.integers(lo, max(lo, min(hi, lo + 300)))
    lo = max(lo, 1e-3) if md["positive"] else lo
    return st.floats(lo, max(lo, min(hi, lo + 1.0)), allow_nan=False)


def param_value(draw, md: dict, shape: Any) -> Any:
    """A parameter value: mostly a good scalar or per-neuron list, sometimes anything."""
    r = draw(st.randoms(use_true_random=True)).randrange(10)
    small = _small(shape)
    if r <= 5:
        return draw(good_value(md))
    if r <= 7 and small and md["kind"] in ("param", "ref"):
        return draw(nested(small, good_value(md)))
    return draw(st.one_of(numbers, st.sampled_from(["zero", "subtract", True, None]),
                          st.lists(numbers, max_size=3), file_refs))


def geometry(rnd: random.Random, dims: int) -> Any:
    """A kernel/stride/padding value: mostly an integer 1..3 or a list of one per axis."""
    if rnd.random() < 0.1:
        return rnd.choice([0, -1, [], [1, 2, 3], [0, 1], "2", 1.5, 10**9])
    if rnd.random() < 0.5:
        return rnd.randint(1, 3)
    return [rnd.randint(1, 3) for _ in range(dims)]


@st.composite
def model_docs(draw) -> dict:
    """A near-valid model document (sizes small): one family's kinds, required parameters
    present, weights mostly of the right shape; then zero to three mutations."""
    # "How often" decisions come from a true random source seeded by Hypothesis: its own
    # draws lean towards the simplest choice (0, the first branch) far more than uniformly.
    rnd = draw(st.randoms(use_true_random=True))

    def rare(p: float) -> bool:
        return rnd.random() < p

    family = "generic" if rare(0.6) else draw(st.sampled_from(FAMILIES))
    kinds = [k for k, (fam, _) in KINDS.items() if fam == family] or list(KINDS)
    inputs = [{"name": f"x{i}", "shape": draw(bad_shapes) if rare(0.05) else draw(good_shapes)}
              for i in range(rnd.choice([0, 1, 1, 1, 2]))]
    pops = []
    for i in range(draw(st.integers(1, 3))):
        kind = "Foo" if rare(0.03) else draw(st.sampled_from(kinds))
        specs = KINDS.get(kind, ("generic", [("tau_mem", {})]))[1]
        shape = draw(bad_shapes) if rare(0.05) else draw(good_shapes)
        params = {}
        for f, md in specs:
            if (md.get("required") and not rare(0.05)) or rare(0.25):
                params[f] = param_value(draw, md, shape) if md else draw(numbers)
        if rare(0.03):
            params["bogus"] = 1
        pop = {"name": f"p{i}", "kind": kind, "shape": shape}
        if params or rare(0.5):
            pop["params"] = params
        pops.append(pop)
    names = [x["name"] for x in inputs] + [p["name"] for p in pops]
    sizes = {x["name"]: x["shape"] for x in inputs + pops}
    conns = []
    types = CONNECTION_TYPES if family == "generic" else ["dense", "dense", "sparse", "conv2d"]
    for _ in range(rnd.choice([0, 1, 1, 2, 2, 3, 4])):
        src = "nowhere" if rare(0.03) else draw(st.sampled_from(names))
        tgt = "x0" if rare(0.03) else draw(st.sampled_from([p["name"] for p in pops]))
        ctype = "fancy" if rare(0.02) else draw(st.sampled_from(types))
        c: dict[str, Any] = {"source": src, "target": tgt, "type": ctype}
        n_in, n_out = _flat(sizes.get(src, [1])), _flat(sizes.get(tgt, [1]))
        wvals = numbers if family == "generic" else st.integers(-300, 300)
        if ctype == "dense":
            c["weight"] = draw(st.one_of(*[nested([n_out, n_in], wvals)] * 4,
                                         nested([n_in, n_out], wvals), file_refs))
        elif ctype == "sparse":
            k = draw(st.integers(0, 4))
            c["weight"] = {
                "rows": draw(st.one_of(st.lists(st.integers(-1, n_out), min_size=k, max_size=k),
                                       file_refs)),
                "cols": draw(st.lists(st.integers(-1, n_in), min_size=k, max_size=k)),
                "values": draw(st.lists(wvals, min_size=k, max_size=k + 1)),
            }
        elif ctype in ("conv2d", "conv1d"):
            dims = 2 if ctype == "conv2d" else 1
            src_shape = sizes.get(src, [1])
            cin = src_shape[0] if isinstance(src_shape, list) and src_shape and \
                isinstance(src_shape[0], int) and 0 < src_shape[0] <= 4 else 1
            wshape = [draw(st.integers(1, 3)), draw(st.sampled_from([cin, cin, 1, 2]))] + \
                [draw(st.integers(1, 3)) for _ in range(dims)]
            c["weight"] = draw(st.one_of(nested(wshape, wvals), file_refs))
            for key in ("stride", "padding", "dilation", "groups"):
                if rare(0.25):
                    c[key] = geometry(rnd, dims)
        elif ctype in ("sumpool2d", "avgpool2d"):
            c["kernel"] = geometry(rnd, 2)
            if rare(0.5):
                c["stride"] = geometry(rnd, 2)
        if rare(0.25):
            c["delay"] = draw(st.one_of(st.integers(-1, 3), st.lists(st.integers(-1, 2), max_size=4),
                                        file_refs))
        if rare(0.15):
            c["bias"] = draw(st.one_of(st.lists(numbers, max_size=4), file_refs))
        if rare(0.15):
            c["name"] = draw(st.sampled_from(["c", "p0", "x0", "c"]))
        if family != "generic" and rare(0.25):
            c["params"] = {draw(st.sampled_from(["weight_exp", "num_weight_bits", "sign_mode",
                                                 "copies", "bogus"])): draw(json_scalars)}
        conns.append(c)
    outputs = [{"name": f"o{i}", "source": "nowhere" if rare(0.03) else
                draw(st.sampled_from(names))} for i in range(rnd.choice([1, 1, 2]))]
    doc: dict[str, Any] = {
        "format": "nmc-model", "version": 1, "name": "fuzz",
        "dt": draw(numbers) if rare(0.05) else 0.001,
        "inputs": inputs, "populations": pops, "connections": conns, "outputs": outputs,
    }
    if family != "generic" or rare(0.03):
        doc["target"] = draw(st.sampled_from(["loihi", "truenorth", "brainscales2", ""]))
    # A deep copy first: sampled_from hands out its own list objects, which a mutation must not
    # change (Hypothesis would see the strategy itself change between cases).
    doc = json.loads(json.dumps(doc))
    if rare(0.4):
        for _ in range(rnd.choice([1, 1, 2, 3])):
            mutate_doc(doc, draw, rnd)
    return doc


def mutate_doc(doc: Any, draw, rnd: random.Random) -> None:
    """One structural mutation at a random place of the document."""
    node = doc
    for _ in range(rnd.choice([1, 2, 3, 3, 4, 4, 5])):
        kids = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        kids = [(k, v) for k, v in kids if isinstance(v, dict | list)]
        if not kids:
            break
        node = draw(st.sampled_from(kids))[1]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        op = draw(st.integers(0, 2))
        if op == 0:
            del node[key]
        elif op == 1:
            node[key] = draw(json_values)
        else:
            node[draw(st.text(max_size=5))] = draw(json_values)
    elif isinstance(node, list) and node:
        i = draw(st.integers(0, len(node) - 1))
        op = draw(st.integers(0, 2))
        if op == 0:
            del node[i]
        elif op == 1:
            node[i] = draw(json_values)
        else:
            node.append(node[i])


class Workspace:
    """A temporary folder with the weight files, reused by every structured case."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nmc_fuzz_json_"))
        self.folder = make_weight_folder(self.root / "model")
        np.save(self.root / "outside.npy", np.zeros(3))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def structured_case(ws: Workspace, doc: dict) -> str | None:
    """Write ``doc`` as model.json in the workspace and load it; the failure or None."""
    from nmc.frontends.model_json import load_model_json

    path = ws.folder / "model.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return failure_of(load_model_json, path)


# ------------------------------------------------------------------------------------------
# Raw byte mutation of the committed good models
# ------------------------------------------------------------------------------------------
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
NASTY_NUMBERS = [b"0", b"-1", b"1e999", b"-0", b"1e12", b"1000000000000", b"0.5", b"2.5e-324",
                 b"NaN", b"Infinity", b"99999999999999999999", b"1e-400", b"3"]


def mutate_bytes(data: bytes, rnd: random.Random, *, tokens: bool = True) -> bytes:
    """One to four byte-level mutations; for text, often a number token replaced."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(7 if tokens else 5)
        if not b:
            break
        i = rnd.randrange(len(b))
        if op == 0:
            b[i] = rnd.randrange(256)
        elif op == 1:
            b[i:i] = bytes(rnd.choice([b"{", b"}", b"[", b"]", b",", b'"', b":", b"\\", b"\xff",
                                       b"\x00", b"null", b" "]))
        elif op == 2:
            del b[i:i + rnd.randint(1, 16)]
        elif op == 3:
            b = b[:i]
        elif op == 4:
            j = rnd.randrange(len(b))
            b[i:i] = b[j:j + rnd.randint(1, 64)]
        else:
            nums = list(_NUMBER.finditer(bytes(b)))
            if nums:
                m = rnd.choice(nums)
                b[m.start():m.end()] = rnd.choice(NASTY_NUMBERS)
    return bytes(b)


def raw_case(model: str, rnd: random.Random, scratch: Path) -> str | None:
    """Copy a good model to ``scratch``, mutate model.json or one weight file, load it."""
    from nmc.frontends.model_json import load_model_json

    if scratch.exists():
        shutil.rmtree(scratch)
    shutil.copytree(MODELS / model, scratch)
    files = sorted(p for p in scratch.iterdir() if p.suffix in (".npy", ".npz"))
    target = scratch / "model.json"
    if files and rnd.random() < 0.3:
        target = rnd.choice(files)
    target.write_bytes(mutate_bytes(target.read_bytes(), rnd, tokens=target.suffix == ".json"))
    return failure_of(load_model_json, scratch / "model.json")


# ------------------------------------------------------------------------------------------
# bench/fuzz.py and the tests
# ------------------------------------------------------------------------------------------
_WS: Workspace | None = None
_SCRATCH: Path | None = None


def _ws() -> Workspace:
    global _WS
    if _WS is None:
        _WS = Workspace()
    return _WS


def _scratch() -> Path:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="nmc_fuzz_raw_")) / "m"
    return _SCRATCH


FORMATS = {
    "model.json (structured)": (model_docs(), lambda doc: structured_case(_ws(), doc)),
    "model.json (raw bytes)": (
        st.tuples(st.sampled_from(GOOD_MODELS), st.randoms(use_true_random=True)),
        lambda case: raw_case(case[0], case[1], _scratch()),
    ),
}
"""For bench/fuzz.py: format -> (strategy, case function returning a failure or None)."""

FUZZ = settings(max_examples=CASES_CI, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def workspace():
    ws = Workspace()
    yield ws
    ws.close()


def test_fuzz_structured_documents(workspace: Workspace):
    @FUZZ
    @given(model_docs())
    def run(doc: dict) -> None:
        failure = structured_case(workspace, doc)
        assert failure is None, f"{failure}\ndocument: {json.dumps(doc)}"

    run()


def test_fuzz_raw_bytes_of_good_models(tmp_path: Path):
    @FUZZ
    @given(st.sampled_from(GOOD_MODELS), st.randoms(use_true_random=True))
    def run(model: str, rnd: random.Random) -> None:
        failure = raw_case(model, rnd, tmp_path / "m")
        assert failure is None, failure

    run()


def test_the_nasty_weight_files_are_refused(workspace: Workspace):
    """Each bad weight file of the workspace gives its own user error (anchored)."""
    from ir.errors import NmcError
    from nmc.frontends.model_json import load_model_json

    doc = {"format": "nmc-model", "version": 1, "name": "m", "dt": 0.001,
           "inputs": [{"name": "x", "shape": [4]}],
           "populations": [{"name": "h", "kind": "IF", "shape": [3],
                            "params": {"v_threshold": 1.0}}],
           "connections": [{"source": "x", "target": "h", "type": "dense", "weight": None}],
           "outputs": [{"name": "y", "source": "h"}]}
    expected = {
        "huge.npy": r'"huge\.npy": the header declares shape \[1000000, 1000000\] float64 '
                    r"\(8 TB\) but the file holds only 16 bytes of data; the file is truncated or "
                    r"damaged: save it again",
        "trunc.npy": r'"trunc\.npy": the header declares shape \[3, 4\] float64 \(96 bytes\) but '
                     r"the file holds only 56 bytes of data; the file is truncated or damaged: "
                     r"save it again",
        "notnpy.npy": r'cannot read "notnpy\.npy": .*',
        "strs.npy": r'"strs\.npy" holds dtype <U1; expected integers or floats',
    }
    path = workspace.folder / "model.json"
    for name, msg in expected.items():
        doc["connections"][0]["weight"] = {"file": name}
        path.write_text(json.dumps(doc))
        with pytest.raises(NmcError, match=rf"^{re.escape(str(path))}: /connections/0/weight/file: "
                                           + msg + "$"):
            load_model_json(path)
