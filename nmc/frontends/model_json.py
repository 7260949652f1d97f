"""The ``model.json`` frontend: nmc's own model format, read into and written from the IR.

The format is specified in ``docs/model-json.md``; its structure is the JSON Schema
``model.schema.json`` beside this module. Reading goes in four steps, each with its own errors:

1. JSON text -> Python objects. Malformed text gives ``file:line:col``; ``NaN``/``Infinity`` tokens
   and numbers too large for a float are refused (they are not JSON, and a non-finite weight would
   silently poison every later stage); duplicate keys are refused (JSON parsers disagree on them).
2. The JSON Schema (structure, types, connection-type specific fields). The most relevant schema
   error (``jsonschema.exceptions.best_match``, deterministic) becomes one message with its JSON
   pointer.
3. Meaning: names, kinds, parameters (checked generically from the node fields' ``spec()``
   metadata, so a new neuron kind needs no change here), array files, shapes, zero-delay cycles.
4. The IR verifier (``ir.verify.verify``), whose problems are mapped back to JSON pointers.

Every error is a :class:`~ir.errors.FrontendError` whose message starts with the file and the JSON
pointer (RFC 6901) of the offending value and says what was expected, e.g.
``model.json: /connections/2/weight: expected shape [100, 64] (target h1 x source x), got [64, 100]``.

Mapping to the IR (deterministic, so ``load -> save -> load`` gives an equal graph):

* each input -> an ``Input`` node; each population -> a neuron node of its kind; each output ->
  an ``Output`` node recording its source;
* each connection -> one connection node named by ``name`` or ``<source>_to_<target>`` (made
  unique), its arrays in the constant pool as ``<conn>.weight``, ``<conn>.bias`` (sparse:
  ``<conn>.rows``, ``<conn>.cols``, ``<conn>.weight``); a dense or sparse connection from a
  multi-axis source gets a ``Flatten`` node ``<conn>_flat`` in front (C order, like
  ``torch.flatten``); a delay d > 0 puts a ``Delay`` node ``<conn>_delay`` between the connection
  and its target; an ``identity`` connection is a direct edge (plus a Delay node when delayed);
* per-neuron parameters become constants named ``<population>.<parameter>``.

Weights are (target, source), as in PyTorch and NIR. A model whose populations use a family-native
neuron kind (e.g. ``LoihiCompartment``) is read at stage ``quantized``: its dense/sparse
connections become that family's native connection kinds, whose extra fields come from the
connection's ``params`` and whose ``delay`` is the native synaptic delay (>= 1).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ir.errors import FrontendError, IRError, NmcError
from ir.graph import Graph, GraphBuilder, Stage, unique_name
from ir.nodes import (
    AvgPool2d,
    Conv1d,
    Conv2d,
    Delay,
    Dense,
    Flatten,
    Input,
    Node,
    Output,
    Ref,
    Sparse,
    SumPool2d,
    field_specs,
    node_kinds,
)

FORMAT = "nmc-model"
VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("model.schema.json")
CONNECTION_TYPES = ("dense", "sparse", "conv2d", "conv1d", "sumpool2d", "avgpool2d", "identity")
LOAD_OPTIONS = ("verify",)

# Generic connection kinds and their model.json type names (used by the writer).
_TYPE_OF_KIND = {
    "Dense": "dense", "Sparse": "sparse", "Conv2d": "conv2d", "Conv1d": "conv1d",
    "SumPool2d": "sumpool2d", "AvgPool2d": "avgpool2d",
}
# Fields of a native connection kind that the loader fills from the connection itself; the
# others come from the connection's "params".
_STRUCTURAL = ("in_features", "out_features", "weight", "rows", "cols", "values", "bias", "delay")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------
def json_pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON pointer from its reference tokens (``~`` and ``/`` escaped)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _describe(value: Any) -> str:
    """A short description of a JSON value for 'got ...' in messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"a number ({json.dumps(value)})"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({json.dumps(text)})"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _num(v: Any) -> str:
    """A number as written in messages (Python's shortest round-trip form)."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


def _first_non_number(value: Any) -> Any:
    """The first leaf of a nested list that is not a number (booleans count as not), or
    ``_NUMBERS`` when every leaf is a number."""
    stack = [iter([value])]
    while stack:
        for x in stack[-1]:
            if isinstance(x, list):
                stack.append(iter(x))
                break
            if isinstance(x, bool) or not isinstance(x, int | float):
                return x
        else:
            stack.pop()
    return _NUMBERS


_NUMBERS = object()


def _shape(s: tuple[int, ...] | list[int]) -> str:
    return "[" + ", ".join(str(int(x)) for x in s) + "]"


def _index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _hint(fname: str) -> str:
    # Unit reminders for the parameters users most often get wrong.
    if fname.startswith("tau"):
        return "; time constants are in seconds"
    return ""


def _required(cls: type[Node], fname: str) -> bool:
    for f in dataclasses.fields(cls):
        if f.name == fname:
            return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    return False


def _default(cls: type[Node], fname: str) -> Any:
    for f in dataclasses.fields(cls):
        if f.name == fname:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    return dataclasses.MISSING


def _neuron_kinds() -> dict[str, type[Node]]:
    """All registered neuron kinds (generic and native) by name."""
    import ir.native  # noqa: F401  (registers the native kinds)

    return {k: c for k, c in node_kinds().items() if c.category == "neuron"}


def _expectation(md: dict, *, every: bool = False) -> str:
    """Words for what a field's spec() metadata admits, e.g. 'a number > 0'."""
    integer = md["kind"] == "int" or md["integer"]
    conds = []
    if md["positive"]:
        conds.append("> 0")
    if md["nonneg"]:
        conds.append(">= 0")
    lo, hi = md["lo"], md["hi"]
    if lo is not None and hi is not None:
        conds.append(f"in [{_num(lo)}, {_num(hi)}]")
    elif lo is not None:
        conds.append(f">= {_num(lo)}")
    elif hi is not None:
        conds.append(f"<= {_num(hi)}")
    if every:
        base = "every value to be an integer" if integer else "every value to be"
        if not conds:
            return base if integer else "every value to be finite"
        return f"{base} {' and '.join(conds)}"
    base = "an integer" if integer else "a number"
    return f"{base} {' and '.join(conds)}".rstrip()


def _violations(a: np.ndarray, md: dict) -> np.ndarray:
    """Boolean mask of the elements of ``a`` that break the metadata's constraints."""
    bad = ~np.isfinite(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    if md["kind"] == "int" or md["integer"]:
        bad |= a != np.round(a)
    if md["positive"]:
        bad |= ~(a > 0)
    if md["nonneg"]:
        bad |= ~(a >= 0)
    if md["lo"] is not None:
        bad |= a < md["lo"]
    if md["hi"] is not None:
        bad |= a > md["hi"]
    return bad


# ------------------------------------------------------------------------------------------------
# Step 1: JSON text
# ------------------------------------------------------------------------------------------------
class _NotJson(Exception):
    """Raised inside the JSON decoder's hooks for a token that is not valid JSON for us."""


# A JSON string (skipped, so that text inside strings is never mistaken for a token), or one of
# the tokens the decoder may have refused: NaN, Infinity, or a number.
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _locate_non_finite(text: str) -> tuple[int, str] | None:
    """Offset and text of the first NaN/Infinity token or out-of-range number outside strings."""
    for m in _TOKEN_RE.finditer(text):
        tok = m.group(1)
        if tok is None:
            continue
        if tok in ("NaN", "Infinity", "-Infinity") or not math.isfinite(float(tok)):
            return m.start(1), tok
    return None


def parse_json_text(text: str, display: str) -> Any:
    """Parse model.json text strictly; errors give ``display:line:col``.

    Refused beyond plain syntax errors: ``NaN``, ``Infinity`` and ``-Infinity`` (Python's json
    module accepts them, JSON does not), numbers that overflow a float (``1e999``), and duplicate
    keys in an object.
    """
    dup_objects: list[tuple[int, str]] = []

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
        d: dict = {}
        for k, v in pairs:
            if k in d:
                dup_objects.append((id(d), k))
            d[k] = v
        return d

    def refuse_constant(tok: str) -> Any:
        raise _NotJson(tok)

    def parse_float(tok: str) -> float:
        v = float(tok)
        if not math.isfinite(v):
            raise _NotJson(tok)
        return v

    try:
        doc = json.loads(
            text, object_pairs_hook=pairs_hook, parse_constant=refuse_constant,
            parse_float=parse_float,
        )
    except json.JSONDecodeError as e:
        raise FrontendError(f"{display}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    except _NotJson as e:
        found = _locate_non_finite(text)
        tok = str(e)
        if found is not None:
            pos, tok = found
            line, col = _line_col(text, pos)
            where = f"{display}:{line}:{col}"
        else:  # pragma: no cover - the scanner finds every token the decoder refuses
            where = display
        if tok in ("NaN", "Infinity", "-Infinity"):
            raise FrontendError(
                f"{where}: {tok} is not valid JSON; write a finite number"
            ) from None
        raise FrontendError(
            f"{where}: number {tok} is out of range for a 64-bit float; write a finite number"
        ) from None
    if dup_objects:
        target_id, key = dup_objects[0]
        ptr = _find_object(doc, target_id, ())
        raise FrontendError(
            f"{display}: {json_pointer(*ptr, key)}: key {json.dumps(key)} appears twice in the "
            "same object; keep one"
        )
    return doc


def _find_object(node: Any, target: int, path: tuple) -> tuple | None:
    if isinstance(node, dict):
        if id(node) == target:
            return path
        for k, v in node.items():
            if isinstance(v, dict | list):
                found = _find_object(v, target, (*path, k))
                if found is not None:
                    return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, dict | list):
                found = _find_object(v, target, (*path, i))
                if found is not None:
                    return found
    return None


# ------------------------------------------------------------------------------------------------
# Step 2: the JSON Schema
# ------------------------------------------------------------------------------------------------
_VALIDATOR = None


def schema() -> dict:
    """The JSON Schema of model.json (a fresh copy of ``model.schema.json``)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        from jsonschema import Draft202012Validator

        _VALIDATOR = Draft202012Validator(schema())
    return _VALIDATOR


_TYPE_WORDS = {
    "object": "an object", "array": "an array", "string": "a string", "number": "a number",
    "integer": "an integer", "boolean": "true or false", "null": "null",
}


def _schema_message(err: Any) -> tuple[tuple, str]:
    """(pointer tokens, message) for one jsonschema ValidationError."""
    path = tuple(err.absolute_path)
    v, vv, inst, sch = err.validator, err.validator_value, err.instance, err.schema
    sch = sch if isinstance(sch, dict) else {}
    hint = f"; {sch['x-hint']}" if "x-hint" in sch else ""
    if v in ("anyOf", "oneOf") and "x-expected" in sch:
        return path, f"expected {sch['x-expected']}, got {_describe(inst)}"
    if v == "not" and "x-message" in sch:
        return path, f"{sch['x-message']}"
    if v == "type":
        types = [vv] if isinstance(vv, str) else list(vv)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return path, f"expected {words}, got {_describe(inst)}{hint}"
    if v == "required":
        missing = [k for k in vv if k not in inst]
        key = missing[0]
        desc = sch.get("properties", {}).get(key, {}).get("description")
        return (*path, key), "required property is missing" + (f" ({desc})" if desc else "")
    if v == "additionalProperties":
        allowed = list(sch.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        if allowed:
            return (*path, extra[0]), f"unexpected property; allowed: {', '.join(allowed)}"
        return (*path, extra[0]), "unexpected property"
    if v == "enum":
        return path, f"expected one of {', '.join(map(str, vv))}, got {_describe(inst)}"
    if v == "const":
        return path, f"expected {json.dumps(vv)}, got {_describe(inst)}{hint}"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        op = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=",
              "exclusiveMaximum": "<"}[v]
        what = "an integer" if sch.get("type") == "integer" else "a number"
        return path, f"expected {what} {op} {_num(vv)}, got {_num(inst)}{hint}"
    if v == "minItems":
        return path, f"expected at least {vv} item(s), got {len(inst)}"
    if v == "maxItems":
        return path, f"expected at most {vv} item(s), got {len(inst)}"
    if v == "minLength":
        return path, "expected a non-empty string"
    if v == "pattern":
        words = sch.get("x-expected", f"a string matching {vv}")
        return path, f"expected {words}, got {_describe(inst)}"
    return path, err.message  # pragma: no cover - every validator the schema uses is handled


def validate_schema(doc: Any, display: str) -> None:
    """Check ``doc`` against the JSON Schema; raise FrontendError for the most relevant problem."""
    from jsonschema.exceptions import best_match

    err = best_match(_validator().iter_errors(doc))
    if err is None:
        return
    path, msg = _schema_message(err)
    ptr = json_pointer(*path)
    if not ptr:
        raise FrontendError(f"{display}: {msg}")
    raise FrontendError(f"{display}: {ptr}: {msg}")


# ------------------------------------------------------------------------------------------------
# Step 3: meaning -> IR graph
# ------------------------------------------------------------------------------------------------
class _Reader:
    """Turns a schema-valid model document into a graph. One instance per load."""

    def __init__(self, doc: dict, folder: Path, display: str):
        self.doc = doc
        self.folder = folder
        self.folder_real = folder.resolve()
        self.display = display
        self.pointers: dict[str, str] = {}  # node name -> JSON pointer of what made it
        self.kinds = _neuron_kinds()

    # ---- errors ---------------------------------------------------------------------------
    def error(self, ptr: str, msg: str) -> FrontendError:
        return FrontendError(f"{self.display}: {ptr}: {msg}" if ptr else f"{self.display}: {msg}")

    # ---- arrays ---------------------------------------------------------------------------
    def array(self, value: Any, ptr: str) -> np.ndarray:
        """A numeric array from an inline (nested) list or a file reference; finite."""
        if isinstance(value, dict):
            a = self.load_file(value, ptr)
        else:
            a = self.inline_array(value, ptr)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            idx = tuple(np.argwhere(~np.isfinite(a))[0])
            raise self.error(ptr, f"expected finite values, got {_num(a[idx])} at index {_index(idx)}")
        return a

    def inline_array(self, value: list, ptr: str) -> np.ndarray:
        # The walk also catches booleans, which numpy would silently turn into 0/1.
        first = _first_non_number(value)
        if first is not _NUMBERS:
            raise self.error(ptr, f"expected a (nested) list of numbers, got {_describe(first)} in it")
        try:
            a = np.array(value)
        except ValueError:
            a = None
        if a is None or a.dtype.kind == "O" and any(isinstance(x, list) for x in a.flat):
            raise self.error(
                ptr, "expected a rectangular nested list of numbers, got rows of different lengths"
            )
        if a.dtype.kind not in "iuf":
            raise self.error(ptr, "expected numbers that fit a 64-bit integer or float")
        return a

    def load_file(self, ref: dict, ptr: str) -> np.ndarray:
        """Load an array from ``{"file": ..., "key": ...}``, safely (see docs/model-json.md).

        Rules: the path is relative to the model's folder and may not leave it (``..`` or a
        symlink that resolves outside are refused, as are absolute paths); ``.npy`` and ``.npz``
        only; always ``allow_pickle=False`` (a pickle can run code); numeric dtypes only.
        """
        name = ref["file"]
        fptr = ptr + "/file"
        if Path(name).is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise self.error(
                fptr, f"{json.dumps(name)} is an absolute path; give a path relative to the "
                "model's folder"
            )
        path = (self.folder / name).resolve()
        if not path.is_relative_to(self.folder_real):
            raise self.error(
                fptr, f"{json.dumps(name)} resolves outside the model's folder; weight files must "
                "be inside it"
            )
        if not path.exists():
            raise self.error(fptr, f"file {json.dumps(name)} not found in the model's folder")
        if not path.is_file():
            raise self.error(fptr, f"{json.dumps(name)} is not a file")
        suffix = path.suffix.lower()
        key = ref.get("key")
        try:
            if suffix == ".npy":
                if key is not None:
                    raise self.error(
                        ptr + "/key", f"a key selects an array inside a .npz archive; "
                        f"{json.dumps(name)} is a .npy file (drop \"key\")"
                    )
                self.check_header(path, None, fptr, json.dumps(name))
                a = np.load(path, allow_pickle=False)
            elif suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    keys = sorted(z.files)
                    if key is None:
                        if len(keys) != 1:
                            raise self.error(
                                ptr, f"{json.dumps(name)} holds {len(keys)} arrays; add \"key\" "
                                f"(available keys: {', '.join(keys) or 'none'})"
                            )
                        key = keys[0]
                    if key not in keys:
                        raise self.error(
                            ptr + "/key", f"{json.dumps(key)} is not in {json.dumps(name)}; "
                            f"available keys: {', '.join(keys) or 'none'}"
                        )
                    self.check_header(path, key, fptr, f"{json.dumps(name)} key {json.dumps(key)}")
                    a = z[key]
            else:
                raise self.error(
                    fptr, f"{json.dumps(name)}: expected a .npy or .npz file, got "
                    f"{json.dumps(suffix or 'no suffix')}"
                )
        except ValueError as e:
            if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
                raise self.error(
                    fptr, f"{json.dumps(name)} holds a pickled (object) array, which nmc never "
                    "loads; save a numeric array (np.save(..., allow_pickle=False))"
                ) from None
            raise self.error(fptr, f"cannot read {json.dumps(name)}: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError) as e:
            raise self.error(fptr, f"cannot read {json.dumps(name)}: {e}") from None
        where = f"{json.dumps(name)}" + (f" key {json.dumps(key)}" if suffix == ".npz" else "")
        if a.dtype.kind not in "iuf":
            raise self.error(
                fptr, f"{where} holds dtype {a.dtype}; expected integers or floats"
            )
        return a

    def check_header(self, path: Path, key: str | None, fptr: str, label: str) -> None:
        """Read an array file's header first: numpy allocates the shape the header declares
        before it reads the data, so a forged or truncated header (8 TB declared in a 1 kB file)
        must be refused here, with the size, not end in a MemoryError."""
        from nmc.resources import check_npy, npy_header

        try:
            header = npy_header(path, key)
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise self.error(fptr, f"cannot read {label}: {e}") from None
        check_npy(header, f"{self.display}: {fptr}: {label}")

    def sized(self, value: Any, ptr: str, shape: tuple[int, ...], why: str) -> np.ndarray:
        a = self.array(value, ptr)
        if a.shape != tuple(shape):
            raise self.error(ptr, f"expected shape {_shape(shape)} ({why}), got {_shape(a.shape)}")
        return a

    # ---- fields checked from spec() metadata -------------------------------------------------
    def field_value(
        self, value: Any, ptr: str, fname: str, md: dict, *, shape: tuple[int, ...] | None,
        const: str, owner: str, native: bool,
    ) -> Any:
        """Check one node field given in JSON against its spec() metadata; return the value
        to put in the node (a scalar, or a Ref to a new per-neuron constant)."""
        k = md["kind"]
        integer = k == "int" or md["integer"]
        if k in ("param", "ref") and isinstance(value, list | dict):
            if shape is None:
                raise self.error(ptr, f"expected {_expectation(md)}, got {_describe(value)}")
            a = self.sized(value, ptr, shape, f"one value per neuron of {owner}")
            bad = _violations(a, md)
            if bad.any():
                idx = tuple(np.argwhere(bad)[0])
                raise self.error(
                    ptr, f"expected {_expectation(md, every=True)}, got {_num(a[idx])} at index "
                    f"{_index(idx)}{_hint(fname)}"
                )
            a = a.astype(np.int64 if (integer or (native and a.dtype.kind in "iu")) else np.float64)
            return self.b.const(const, a)
        if k == "ref":
            raise self.error(ptr, f"expected a list or a file reference, got {_describe(value)}")
        if k in ("param", "float", "int"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.error(ptr, f"expected {_expectation(md)}, got {_describe(value)}")
            try:
                finite = math.isfinite(float(value))
            except OverflowError:
                finite = False
            if not finite or _violations(np.asarray(float(value)), md).any():
                raise self.error(
                    ptr, f"expected {_expectation(md)}, got {json.dumps(value)}{_hint(fname)}"
                )
            if integer and isinstance(value, float):
                value = int(value)  # 2.0 -> 2: integer fields hold ints
            return value
        if k == "str":
            if not isinstance(value, str):
                raise self.error(ptr, f"expected a string, got {_describe(value)}")
            if md["choices"] and value not in md["choices"]:
                raise self.error(
                    ptr, f"expected one of {', '.join(md['choices'])}, got {json.dumps(value)}"
                )
            return value
        if k == "bool":
            if not isinstance(value, bool):
                raise self.error(ptr, f"expected true or false, got {_describe(value)}")
            return value
        if k in ("shape", "ints"):
            if not isinstance(value, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in value
            ):
                raise self.error(ptr, f"expected a list of integers, got {_describe(value)}")
            return tuple(value)
        raise self.error(ptr, f"field kind {k} cannot be given in model.json")  # pragma: no cover

    def fields_from(
        self, cls: type[Node], params: Mapping[str, Any], ptr: str, *, skip: tuple[str, ...],
        shape: tuple[int, ...] | None, owner: str, const_prefix: str, native: bool,
    ) -> dict[str, Any]:
        specs = [(f, md) for f, md in field_specs(cls) if f not in skip]
        valid = [f for f, _ in specs]
        for key in params:
            if key not in valid:
                listing = ", ".join(valid) if valid else "none"
                raise self.error(
                    f"{ptr}/{json_pointer(key)[1:]}",
                    f"unknown parameter of {cls.kind}; valid parameters: {listing}",
                )
        missing = [f for f in valid if f not in params and _required(cls, f)]
        if missing:
            req = [f for f in valid if _required(cls, f)]
            raise self.error(
                ptr, f"missing required parameter {missing[0]} of {cls.kind} (required: "
                f"{', '.join(req)})"
            )
        out = {}
        for f, md in specs:
            if f in params:
                out[f] = self.field_value(
                    params[f], f"{ptr}/{json_pointer(f)[1:]}", f, md, shape=shape,
                    const=f"{const_prefix}.{f}", owner=owner, native=native,
                )
        return out

    # ---- the whole model ----------------------------------------------------------------
    def read(self) -> Graph:
        doc = self.doc
        pops = doc["populations"]

        # Native or generic: decided by the population kinds (one family per model).
        family = None
        first_generic = None
        for i, p in enumerate(pops):
            cls = self.kinds.get(p["kind"])
            if cls is None:
                raise self.error(f"/populations/{i}/kind", self.unknown_kind(p["kind"]))
            if cls.family == "generic":
                first_generic = first_generic if first_generic is not None else i
            elif family is None:
                family = (cls.family, i)
            elif cls.family != family[0]:
                raise self.error(
                    f"/populations/{i}/kind", f"{cls.kind} belongs to family {cls.family}, but "
                    f"/populations/{family[1]} uses family {family[0]}; a model uses one family"
                )
        if family is not None and first_generic is not None:
            raise self.error(
                f"/populations/{first_generic}/kind",
                f"generic kind {pops[first_generic]['kind']} mixed with native kinds of family "
                f"{family[0]} (/populations/{family[1]}); a model is either generic or native",
            )
        self.family = family[0] if family else None
        if self.family is not None and "target" not in doc:
            raise self.error(
                "/target", f"required for a model in native kinds ({pops[family[1]]['kind']} at "
                f"/populations/{family[1]}): name the target profile, e.g. {json.dumps(self.family)}"
            )
        if self.family is None and "target" in doc:
            raise self.error(
                "/target", "applies only to models in native kinds (this model is generic; the "
                "target is chosen when compiling)"
            )

        attrs: dict[str, Any] = {}
        for k, v in doc.get("attrs", {}).items():
            if k in ("provenance", "target"):
                raise self.error(f"/attrs/{k}", f"give {k} as the top-level \"{k}\"")
            attrs[k] = v
        if "provenance" in doc:
            attrs["provenance"] = doc["provenance"]
        if "target" in doc:
            attrs["target"] = doc["target"]
        stage = Stage.QUANTIZED if self.family else Stage.FLOAT
        self.b = GraphBuilder(doc["name"], dt=float(doc["dt"]), stage=stage, attrs=attrs)

        self.check_names()
        for i, inp in enumerate(doc["inputs"]):
            self.check_size(tuple(inp["shape"]), f"/inputs/{i}/shape", "shrink the input")
            self.b.add(Input(name=inp["name"], shape=tuple(inp["shape"])))
            self.pointers[inp["name"]] = f"/inputs/{i}"
        for i, p in enumerate(pops):
            self.population(i, p)
        for i, c in enumerate(doc["connections"]):
            self.connection(i, c)
        self.check_cycles()
        for i, o in enumerate(doc["outputs"]):
            src = o["source"]
            if src not in self.sources:
                raise self.error(
                    f"/outputs/{i}/source", f"unknown source {json.dumps(src)}; inputs and "
                    f"populations: {', '.join(self.sources)}"
                )
            self.b.add(Output(name=o["name"], shape=self.b.nodes[src].out_shape), src)
            self.pointers[o["name"]] = f"/outputs/{i}"
        return self.b.build()

    def unknown_kind(self, kind: str) -> str:
        """The message for an unknown kind: a close match, the generic kinds and the families
        (native kinds are not listed one by one: each chip family adds its own)."""
        import difflib

        from ir.native import FAMILIES

        close = difflib.get_close_matches(kind, sorted(self.kinds), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        generic = sorted(k for k, c in self.kinds.items() if c.family == "generic")
        return (
            f"unknown neuron kind {json.dumps(kind)}{hint}; generic kinds: {', '.join(generic)}; "
            f"or a native kind of family {', '.join(FAMILIES)}"
        )

    def check_names(self) -> None:
        """Node names are one namespace: inputs, populations, outputs and named connections.
        Unnamed connections get ``<source>_to_<target>``, made unique."""
        seen: dict[str, str] = {}
        doc = self.doc
        for section in ("inputs", "populations", "outputs", "connections"):
            for i, item in enumerate(doc[section]):
                name = item.get("name")
                if name is None:
                    continue
                ptr = f"/{section}/{i}/name"
                if name in seen:
                    raise self.error(
                        ptr, f"name {json.dumps(name)} is already used by {seen[name]}; "
                        "inputs, populations, connections and outputs need distinct names"
                    )
                seen[name] = ptr.rsplit("/", 1)[0]
        self.sources = [x["name"] for x in doc["inputs"]] + [p["name"] for p in doc["populations"]]
        taken = set(seen)
        self.conn_names: list[str] = []
        for c in doc["connections"]:
            name = c.get("name") or unique_name(taken, f"{c['source']}_to_{c['target']}")
            taken.add(name)
            self.conn_names.append(name)
        self.taken = taken

    def aux_name(self, base: str) -> str:
        name = unique_name(self.taken, base)
        self.taken.add(name)
        return name

    def check_size(self, shape: tuple[int, ...], ptr: str, fix: str) -> None:
        """Refuse a population (or input) whose state alone exceeds the memory limit, before
        anything of its size is allocated (nmc.resources)."""
        from nmc.resources import check_neurons

        check_neurons(math.prod(shape), f"{self.display}: {ptr}", fix=fix)

    def population(self, i: int, p: dict) -> None:
        ptr = f"/populations/{i}"
        cls = self.kinds[p["kind"]]
        shape = tuple(p["shape"])
        self.check_size(shape, ptr + "/shape", "shrink the population")
        values = self.fields_from(
            cls, p.get("params", {}), f"{ptr}/params", skip=("shape",), shape=shape,
            owner=p["name"], const_prefix=p["name"], native=self.family is not None,
        )
        try:
            node = cls(name=p["name"], shape=shape, **values)
        except IRError as e:
            raise self.error(ptr, str(e)) from None
        self.b.add(node)
        self.pointers[node.name] = ptr

    def check_cycles(self) -> None:
        """Refuse a loop of connections that all act in the same step (nothing could be
        computed first). Checked on the JSON so that the message names the connections."""
        import networkx as nx

        if self.family is not None:
            return  # native connections carry delay >= 1 (checked per connection)
        g = nx.MultiDiGraph()
        pops = {p["name"] for p in self.doc["populations"]}
        for i, c in enumerate(self.doc["connections"]):
            d = c.get("delay", 0)
            if c["source"] in pops and c["target"] in pops and isinstance(d, int) and d == 0:
                g.add_edge(c["source"], c["target"], key=i)
            elif c["source"] in pops and c["target"] in pops and not isinstance(d, int):
                # A per-neuron delay with some zeros is a zero-delay path for those neurons.
                a = self.array(d, f"/connections/{i}/delay")  # already checked: cannot fail
                if a.size == 0 or a.min() <= 0:
                    g.add_edge(c["source"], c["target"], key=i)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return
        names = [u for u, _, _ in cycle] + [cycle[0][0]]
        idx = [k for _, _, k in cycle]
        via = ", ".join(f"/connections/{k}" for k in idx)
        raise self.error(
            f"/connections/{max(idx)}",
            f"zero-delay cycle {' -> '.join(names)} (through {via}); give a connection in the "
            "loop \"delay\": 1 or more",
        )

    # ---- connections ----------------------------------------------------------------------
    def connection(self, i: int, c: dict) -> None:
        ptr = f"/connections/{i}"
        name = self.conn_names[i]
        src_name, tgt_name, ctype = c["source"], c["target"], c["type"]
        nodes = self.b.nodes
        if src_name not in self.sources:
            raise self.error(
                f"{ptr}/source", f"unknown source {json.dumps(src_name)}; inputs and populations: "
                f"{', '.join(self.sources)}"
            )
        pops = [p["name"] for p in self.doc["populations"]]
        if tgt_name not in pops:
            if tgt_name in self.sources:
                msg = (f"{json.dumps(tgt_name)} is an input; the target of a connection is a "
                       f"population ({', '.join(pops)})")
            else:
                msg = f"unknown population {json.dumps(tgt_name)}; populations: {', '.join(pops)}"
            raise self.error(f"{ptr}/target", msg)
        src, tgt = nodes[src_name], nodes[tgt_name]
        if self.family is not None:
            self.native_connection(i, c, name, src, tgt)
            return
        if "params" in c:
            raise self.error(
                f"{ptr}/params", "applies only to models in native kinds (this model's "
                "populations are generic)"
            )
        if ctype == "identity":
            if tuple(src.out_shape) != tuple(tgt.in_shape):
                raise self.error(
                    ptr, f"an identity connection needs equal shapes; source {src.name} has shape "
                    f"{_shape(src.out_shape)}, target {tgt.name} has {_shape(tgt.in_shape)}"
                )
            self.attach(i, c, name, src.name, tgt, tgt.in_shape)
            return
        upstream = src.name
        in_shape = tuple(src.out_shape)
        if ctype in ("dense", "sparse"):
            self.need_flat_target(ptr, ctype, tgt)
            if len(in_shape) > 1:
                fl = Flatten(name=self.aux_name(f"{name}_flat"), input_shape=in_shape)
                self.b.add(fl, src.name)
                self.pointers[fl.name] = ptr
                upstream = fl.name
        node = getattr(self, "conn_" + ctype)(ptr, c, name, src, tgt)
        if tuple(node.out_shape) != tuple(tgt.in_shape):
            raise self.error(
                f"{ptr}/target", f"{ctype} output shape {_shape(node.out_shape)} does not match "
                f"population {tgt.name} shape {_shape(tgt.in_shape)}"
            )
        self.b.add(node, upstream)
        self.pointers[node.name] = ptr
        self.attach(i, c, name, node.name, tgt, node.out_shape)

    def attach(
        self, i: int, c: dict, name: str, upstream: str, tgt: Node, shape: tuple[int, ...],
    ) -> None:
        """Connect ``upstream`` to the target, through a Delay node when the delay is > 0."""
        ptr = f"/connections/{i}/delay"
        d = c.get("delay", 0)
        if isinstance(d, int):
            if d == 0:
                self.b.connect(upstream, tgt.name)
                return
            value: Any = d
        else:
            a = self.sized(d, ptr, tuple(shape), f"one delay per neuron of {tgt.name}")
            if (a < 0).any() or (a != np.round(a)).any():
                bad = (a < 0) | (a != np.round(a))
                idx = tuple(np.argwhere(bad)[0])
                raise self.error(
                    ptr, f"expected every value to be an integer >= 0 (steps), got {_num(a[idx])} "
                    f"at index {_index(idx)}"
                )
            if not a.any():
                self.b.connect(upstream, tgt.name)
                return
            value = self.b.const(f"{name}.delay", a.astype(np.int64))
        dn = Delay(name=self.aux_name(f"{name}_delay"), shape=tuple(shape), delay=value)
        self.b.add(dn, upstream)
        self.pointers[dn.name] = f"/connections/{i}"
        self.b.connect(dn.name, tgt.name)

    def need_flat_target(self, ptr: str, ctype: str, tgt: Node) -> None:
        if len(tgt.in_shape) != 1:
            raise self.error(
                f"{ptr}/target", f"a {ctype} connection needs a 1-axis target population; "
                f"{tgt.name} has shape {_shape(tgt.in_shape)}"
            )

    def bias(self, ptr: str, c: dict, name: str, n: int, why: str) -> Ref | None:
        if "bias" not in c:
            return None
        a = self.sized(c["bias"], ptr + "/bias", (n,), why)
        return self.b.const(f"{name}.bias", a.astype(np.float64))

    def _src_words(self, src: Node) -> str:
        shape = tuple(src.out_shape)
        return src.name if len(shape) == 1 else f"{src.name} flattened from {_shape(shape)}"

    def conn_dense(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        n_in, n_out = math.prod(src.out_shape), tgt.in_shape[0]
        w = self.sized(
            c["weight"], ptr + "/weight", (n_out, n_in),
            f"target {tgt.name} x source {self._src_words(src)}",
        )
        wref = self.b.const(f"{name}.weight", w.astype(np.float64))
        bref = self.bias(ptr, c, name, n_out, f"one per neuron of {tgt.name}")
        return Dense(name=name, in_features=n_in, out_features=n_out, weight=wref, bias=bref)

    def coo(self, ptr: str, w: dict, n_in: int, n_out: int, tgt: Node, src: Node,
            name: str, integer_values: bool = False) -> tuple[Ref, Ref, Ref]:
        rows = self.array(w["rows"], ptr + "/rows")
        cols = self.array(w["cols"], ptr + "/cols")
        vals = self.array(w["values"], ptr + "/values")
        for key, a in (("rows", rows), ("cols", cols), ("values", vals)):
            if a.ndim != 1:
                raise self.error(f"{ptr}/{key}", f"expected a 1-D array, got shape {_shape(a.shape)}")
        if not (len(rows) == len(cols) == len(vals)):
            raise self.error(
                ptr, f"rows, cols and values need equal lengths, got {len(rows)}, {len(cols)}, "
                f"{len(vals)}"
            )
        for key, a, n, who in (("rows", rows, n_out, f"target {tgt.name}"),
                               ("cols", cols, n_in, f"source {self._src_words(src)}")):
            bad = (a != np.round(a)) | (a < 0) | (a >= n)
            if bad.any():
                k = int(np.argwhere(bad)[0][0])
                raise self.error(
                    f"{ptr}/{key}", f"expected integers in [0, {n}) ({who} has {n} neurons), got "
                    f"{_num(a[k])} at index [{k}]"
                )
        if integer_values:
            vals = self.integral(vals, ptr + "/values", "native weights are integers")
        return (
            self.b.const(f"{name}.rows", rows.astype(np.int64)),
            self.b.const(f"{name}.cols", cols.astype(np.int64)),
            self.b.const(f"{name}.weight", vals.astype(np.int64 if integer_values else np.float64)),
        )

    def integral(self, a: np.ndarray, ptr: str, why: str) -> np.ndarray:
        bad = a != np.round(a)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise self.error(ptr, f"expected integers ({why}), got {_num(a[idx])} at index {_index(idx)}")
        return a

    def conn_sparse(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        n_in, n_out = math.prod(src.out_shape), tgt.in_shape[0]
        rows, cols, vals = self.coo(ptr + "/weight", c["weight"], n_in, n_out, tgt, src, name)
        bref = self.bias(ptr, c, name, n_out, f"one per neuron of {tgt.name}")
        return Sparse(name=name, in_features=n_in, out_features=n_out, rows=rows, cols=cols,
                      values=vals, bias=bref)

    def pair(self, ptr: str, c: dict, key: str, default: tuple[int, int] | None,
             dims: int) -> Any:
        """A per-axis geometry value: an integer for every axis, or a list of one per axis."""
        if key not in c:
            return default
        v = c[key]
        if isinstance(v, int):
            return (v,) * dims if dims > 1 else v
        if len(v) != dims:
            axes = "(h, w)" if dims == 2 else "(length)"
            raise self.error(
                f"{ptr}/{key}", f"expected {dims} value(s) {axes} or one integer, got {len(v)}"
            )
        return tuple(v) if dims > 1 else v[0]

    def need_source_dims(self, ptr: str, ctype: str, src: Node, dims: int, layout: str) -> None:
        if len(src.out_shape) != dims:
            raise self.error(
                f"{ptr}/source", f"a {ctype} connection needs a source of shape {layout}; "
                f"{src.name} has shape {_shape(src.out_shape)}"
            )

    def conv(self, ptr: str, c: dict, name: str, src: Node, dims: int) -> Node:
        ctype = f"conv{dims}d"
        layout = "[C, H, W]" if dims == 2 else "[C, L]"
        self.need_source_dims(ptr, ctype, src, dims + 1, layout)
        w = self.array(c["weight"], ptr + "/weight")
        wlayout = ("(out_channels, in_channels/groups, kh, kw)" if dims == 2
                   else "(out_channels, in_channels/groups, k)")
        if w.ndim != dims + 2:
            raise self.error(
                ptr + "/weight", f"expected a {dims + 2}-D array {wlayout}, got shape "
                f"{_shape(w.shape)}"
            )
        groups = c.get("groups", 1)
        ch = src.out_shape[0]
        if ch % groups or w.shape[0] % groups:
            raise self.error(
                ptr + "/groups", f"groups = {groups} must divide the input channels ({ch}) and "
                f"the output channels ({w.shape[0]})"
            )
        if w.shape[1] != ch // groups:
            want = [w.shape[0], ch // groups, *w.shape[2:]]
            raise self.error(
                ptr + "/weight", f"expected shape {_shape(want)} {wlayout} for source "
                f"{src.name} with {ch} channels, got {_shape(w.shape)}"
            )
        wref = self.b.const(f"{name}.weight", w.astype(np.float64))
        bref = self.bias(ptr, c, name, w.shape[0], "one per output channel")
        geo: dict[str, Any] = dict(
            input_shape=tuple(src.out_shape), out_channels=int(w.shape[0]), groups=groups,
            weight=wref, bias=bref,
        )
        if dims == 2:
            geo["kernel"] = tuple(int(k) for k in w.shape[2:])
            cls: type[Node] = Conv2d
        else:
            geo["kernel"] = int(w.shape[2])
            cls = Conv1d
        for key, default in (("stride", 1), ("padding", 0), ("dilation", 1)):
            geo[key] = self.pair(ptr, c, key, (default,) * dims if dims > 1 else default, dims)
        try:
            return cls(name=name, **geo)
        except IRError as e:
            raise self.error(ptr, str(e)) from None

    def conn_conv2d(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        return self.conv(ptr, c, name, src, 2)

    def conn_conv1d(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        return self.conv(ptr, c, name, src, 1)

    def pool(self, ptr: str, c: dict, name: str, src: Node, cls: type[Node]) -> Node:
        self.need_source_dims(ptr, c["type"], src, 3, "[C, H, W]")
        try:
            return cls(
                name=name, input_shape=tuple(src.out_shape),
                kernel=self.pair(ptr, c, "kernel", None, 2),
                stride=self.pair(ptr, c, "stride", None, 2),
                padding=self.pair(ptr, c, "padding", (0, 0), 2),
            )
        except IRError as e:
            raise self.error(ptr, str(e)) from None

    def conn_sumpool2d(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        return self.pool(ptr, c, name, src, SumPool2d)

    def conn_avgpool2d(self, ptr: str, c: dict, name: str, src: Node, tgt: Node) -> Node:
        return self.pool(ptr, c, name, src, AvgPool2d)

    def native_connection(self, i: int, c: dict, name: str, src: Node, tgt: Node) -> None:
        """A dense or sparse connection between native populations becomes the family's native
        connection kind; its ``delay`` is the native synaptic delay (hardware: >= 1)."""
        ptr = f"/connections/{i}"
        ctype = c["type"]
        cls = _native_connection_kind(self.family, ctype)
        if cls is None:
            raise self.error(
                f"{ptr}/type", f"connection type {ctype} has no native form in family "
                f"{self.family}; use {' or '.join(native_connection_types(self.family)) or 'none'}"
            )
        if "bias" in c:
            raise self.error(
                f"{ptr}/bias", f"native {cls.kind} connections take no bias; give the bias to the "
                "target population's parameters"
            )
        self.need_flat_target(ptr, ctype, tgt)
        upstream = src.name
        in_shape = tuple(src.out_shape)
        if len(in_shape) > 1:
            fl = Flatten(name=self.aux_name(f"{name}_flat"), input_shape=in_shape)
            self.b.add(fl, src.name)
            self.pointers[fl.name] = ptr
            upstream = fl.name
        n_in, n_out = math.prod(in_shape), tgt.in_shape[0]
        values = self.fields_from(
            cls, c.get("params", {}), f"{ptr}/params", skip=_STRUCTURAL, shape=None,
            owner=name, const_prefix=name, native=True,
        )
        specs = dict(field_specs(cls))
        if "delay" in specs:
            if "delay" in c:
                values["delay"] = self.field_value(
                    c["delay"], f"{ptr}/delay", "delay", specs["delay"], shape=None,
                    const=f"{name}.delay", owner=name, native=True,
                )
        elif c.get("delay", 0) != 0:
            raise self.error(f"{ptr}/delay", f"native {cls.kind} connections have no delay")
        if ctype == "dense":
            w = self.sized(
                c["weight"], ptr + "/weight", (n_out, n_in),
                f"target {tgt.name} x source {self._src_words(src)}",
            )
            w = self.integral(w, ptr + "/weight", "native weights are integers")
            values["weight"] = self.b.const(f"{name}.weight", w.astype(np.int64))
        else:
            rows, cols, vals = self.coo(ptr + "/weight", c["weight"], n_in, n_out, tgt, src, name,
                                        integer_values=True)
            values.update(rows=rows, cols=cols, values=vals)
        try:
            node = cls(name=name, in_features=n_in, out_features=n_out, **values)
        except IRError as e:
            raise self.error(ptr, str(e)) from None
        self.b.add(node, upstream)
        self.pointers[node.name] = ptr
        self.b.connect(node.name, tgt.name)


def _native_connection_kind(family: str, ctype: str) -> type[Node] | None:
    """The native connection kind of ``family`` for a dense or sparse connection, found by its
    fields (so a new family needs no change here): dense has ``weight``, sparse ``rows/cols/
    values``; both have ``in_features``/``out_features``."""
    for cls in node_kinds().values():
        if cls.family != family or cls.category != "connection":
            continue
        names = {f for f, _ in field_specs(cls)}
        if not {"in_features", "out_features"} <= names:
            continue
        if ctype == "dense" and "weight" in names:
            return cls
        if ctype == "sparse" and {"rows", "cols", "values"} <= names:
            return cls
    return None


def native_connection_types(family: str) -> list[str]:
    """The model.json connection types a native family supports."""
    return [t for t in ("dense", "sparse") if _native_connection_kind(family, t) is not None]


# ------------------------------------------------------------------------------------------------
# Step 4: verification, with problems mapped back to JSON pointers
# ------------------------------------------------------------------------------------------------
def _verify(graph: Graph, pointers: dict[str, str], display: str) -> None:
    try:
        from ir.verify import verify
    except ImportError:  # the verifier is optional only while it is being written
        try:
            graph.topo_order()
        except IRError as e:
            raise FrontendError(f"{display}: {e}") from None
        return
    problems: list[str] = []
    try:
        result = verify(graph)
        if isinstance(result, list | tuple):
            problems = [str(p) for p in result]
    except NmcError as e:
        problems = [str(p) for p in getattr(e, "problems", [str(e)])]
    if not problems:
        return
    located = [_locate_problem(p, pointers, display) for p in problems]
    if len(located) == 1:
        raise FrontendError(located[0])
    raise FrontendError(
        f"{len(located)} problems:\n" + "\n".join(f"  - {p}" for p in located)
    )


def _locate_problem(problem: str, pointers: dict[str, str], display: str) -> str:
    """Prefix a verifier problem with the JSON pointer of the first node name it mentions."""
    best = None
    for name, ptr in pointers.items():
        m = re.search(rf"(?<![A-Za-z0-9_.@]){re.escape(name)}(?![A-Za-z0-9_]|\.[A-Za-z0-9_])", problem)
        if m and (best is None or m.start() < best[0] or (m.start() == best[0] and len(name) > best[1])):
            best = (m.start(), len(name), ptr)
    if best is None:
        return f"{display}: {problem}"
    return f"{display}: {best[2]}: {problem}"


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------
def model_from_dict(
    doc: Any, folder: str | Path = ".", *, display: str = "model.json", verify: bool = True,
) -> Graph:
    """Build the IR graph of a model given as a parsed JSON document.

    ``folder`` is where weight files are looked up; ``display`` names the model in messages.
    """
    validate_schema(doc, display)
    reader = _Reader(doc, Path(folder), display)
    graph = reader.read()
    if verify:
        _verify(graph, reader.pointers, display)
    return graph


def load_model_json(path: str | Path, **options: Any) -> Graph:
    """Read a ``model.json`` file into an IR graph (stage ``float``, or ``quantized`` when the
    model is given in a family's native kinds), verified.

    Options: ``verify=False`` skips the IR verifier (the frontend's own checks still run).
    Raises FrontendError naming the file, the JSON pointer and what was expected.
    """
    unknown = sorted(set(options) - set(LOAD_OPTIONS))
    if unknown:
        raise FrontendError(
            f"model.json reader: unknown option(s) {', '.join(unknown)}; options: "
            f"{', '.join(LOAD_OPTIONS)}"
        )
    path = Path(path)
    display = str(path)
    if path.is_dir():
        path = path / "model.json"
        display = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FrontendError(f"{display}: no such file") from None
    except OSError as e:
        raise FrontendError(f"{display}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FrontendError(
            f"{display}: not UTF-8 text (invalid byte at offset {e.start}); save the file as UTF-8"
        ) from None
    doc = parse_json_text(text, display)
    return model_from_dict(doc, path.parent, display=display, verify=options.get("verify", True))


# ---- writer --------------------------------------------------------------------------------------
class _Writer:
    """Turns a float or native graph into a model document plus the arrays it references."""

    def __init__(self, graph: Graph, weights: str):
        self.g = graph
        self.weights = weights
        self.arrays: dict[str, np.ndarray] = {}

    def error(self, msg: str) -> FrontendError:
        return FrontendError(f"graph {self.g.name}: cannot write model.json: {msg}")

    def ref(self, r: Ref) -> dict:
        self.arrays[r.name] = self.g.const(r)
        return {"file": self.weights, "key": r.name}

    def value(self, v: Any) -> Any:
        if isinstance(v, Ref):
            return self.ref(v)
        if isinstance(v, tuple):
            return list(v)
        return v

    def params(self, node: Node, skip: tuple[str, ...]) -> dict:
        out = {}
        cls = type(node)
        for f, _ in field_specs(node):
            if f in skip:
                continue
            v = getattr(node, f)
            d = _default(cls, f)
            # Omit a default only when it is the same value *and* type (1 vs 1.0 round-trips).
            if d is not dataclasses.MISSING and type(v) is type(d) and v == d:
                continue
            out[f] = self.value(v)
        return out

    def build(self) -> dict:
        g = self.g
        if g.stage not in (Stage.FLOAT, Stage.QUANTIZED) or g.mapping is not None:
            raise self.error(
                f"stage {g.stage.value}: model.json holds float or quantized graphs (before "
                "partitioning); save the .nmir text instead"
            )
        if not _NAME_RE.match(g.name):
            raise self.error(f"graph name {g.name!r} is not a valid model name")
        doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": g.name,
                               "dt": float(g.dt)}
        attrs = dict(g.attrs)
        if "target" in attrs:
            doc["target"] = attrs.pop("target")
        doc["inputs"] = [{"name": n.name, "shape": list(n.shape)} for n in g.inputs]
        doc["populations"] = []
        for n in g.by_category("neuron"):
            item: dict[str, Any] = {"name": n.name, "kind": n.kind, "shape": list(n.shape)}
            params = self.params(n, ("shape",))
            if params:
                item["params"] = params
            doc["populations"].append(item)
        doc["connections"] = self.connections()
        doc["outputs"] = []
        for n in g.outputs:
            preds = g.predecessors(n.name)
            if len(preds) != 1:
                raise self.error(f"output {n.name} has {len(preds)} sources; expected 1")
            doc["outputs"].append({"name": n.name, "source": preds[0]})
        if "provenance" in attrs:
            doc["provenance"] = attrs.pop("provenance")
        if attrs:
            doc["attrs"] = attrs
        return doc

    def single(self, name: str, succ: bool) -> str:
        nbrs = self.g.successors(name) if succ else self.g.predecessors(name)
        if len(nbrs) != 1:
            node = self.g.node(name)
            raise self.error(
                f"{node.kind} {name} has {len(nbrs)} {'successors' if succ else 'sources'}; "
                "model.json connections have one source and one target"
            )
        return nbrs[0]

    def connections(self) -> list[dict]:
        g = self.g
        nodes = g.nodes
        used: set[str] = set()
        out: list[dict] = []

        def endpoint(name: str) -> bool:
            n = nodes[name]
            return n.category == "neuron" or n.kind == "Input"

        for a, b in g.edges:
            if not endpoint(a) or nodes[b].kind == "Output":
                continue
            B = nodes[b]
            if B.category == "neuron":
                out.append({"source": a, "target": b, "type": "identity"})
                continue
            if B.kind == "Delay":  # identity connection with a delay
                tgt = self.single(b, True)
                if not endpoint(tgt) or nodes[tgt].kind == "Input":
                    raise self.error(f"Delay {b} does not feed a population")
                used.add(b)
                out.append({"source": a, "target": tgt, "type": "identity",
                            "delay": self.value(B.delay)})
                continue
            cname = b
            if B.kind == "Flatten":
                used.add(b)
                cname = self.single(b, True)
                if self.single(cname, False) != b:  # pragma: no cover - one source per connection
                    raise self.error(f"Flatten {b} does not feed a single connection")
            C = nodes[cname]
            if C.category != "connection" or C.kind in ("Flatten", "Scale"):
                raise self.error(f"{C.kind} {cname} has no model.json form")
            used.add(cname)
            nxt = self.single(cname, True)
            delay = None
            if nodes[nxt].kind == "Delay":
                used.add(nxt)
                delay = nodes[nxt].delay
                nxt = self.single(nxt, True)
            if nodes[nxt].category != "neuron":
                raise self.error(f"connection {cname} does not feed a population")
            item = self.connection_item(C, a, nxt)
            if delay is not None:
                item["delay"] = self.value(delay)
            out.append(item)
        for n in nodes.values():
            if n.category in ("connection", "delay") and n.name not in used:
                raise self.error(f"{n.kind} {n.name} has no model.json form")
        return out

    def connection_item(self, C: Node, src: str, tgt: str) -> dict:
        item: dict[str, Any] = {"name": C.name, "source": src, "target": tgt}
        if C.family != "generic":
            names = {f for f, _ in field_specs(C)}
            item["type"] = "dense" if "weight" in names else "sparse"
            if item["type"] == "dense":
                item["weight"] = self.ref(C.weight)
            else:
                item["weight"] = {"rows": self.ref(C.rows), "cols": self.ref(C.cols),
                                  "values": self.ref(C.values)}
            if "delay" in names:
                item["delay"] = self.value(C.delay)
            params = self.params(C, _STRUCTURAL)
            if params:
                item["params"] = params
            return item
        ctype = _TYPE_OF_KIND[C.kind]
        item["type"] = ctype
        if ctype == "sparse":
            item["weight"] = {"rows": self.ref(C.rows), "cols": self.ref(C.cols),
                              "values": self.ref(C.values)}
        elif ctype in ("dense", "conv2d", "conv1d"):
            item["weight"] = self.ref(C.weight)
        if getattr(C, "bias", None) is not None:
            item["bias"] = self.ref(C.bias)
        if ctype in ("conv2d", "conv1d"):
            # Geometry other than the defaults; the kernel size is the weight's shape.
            item.update(self.params(C, ("input_shape", "out_channels", "kernel", "weight", "bias")))
        if ctype in ("sumpool2d", "avgpool2d"):
            item["kernel"] = list(C.kernel)
            if C.stride is not None:
                item["stride"] = list(C.stride)
            if tuple(C.padding) != (0, 0):
                item["padding"] = list(C.padding)
        return item


def format_json(value: Any, indent: int = 2, _level: int = 0) -> str:
    """JSON text, indented, with lists of plain values kept on one line (shapes, small weight
    rows), so model files stay readable. Refuses NaN/Infinity like the reader."""
    pad = " " * (indent * (_level + 1))
    end = " " * (indent * _level)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{pad}{json.dumps(str(k))}: {format_json(v, indent, _level + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + end + "}"
    if isinstance(value, list | tuple):
        if all(not isinstance(v, dict | list | tuple) for v in value):
            return json.dumps(list(value), allow_nan=False)
        items = [pad + format_json(v, indent, _level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + end + "]"
    return json.dumps(value, allow_nan=False)


def model_to_dict(graph: Graph, weights: str = "weights.npz") -> tuple[dict, dict[str, np.ndarray]]:
    """The model document of ``graph`` and the arrays (by constant name) its file references
    point to in ``weights``. Raises FrontendError for a structure model.json cannot express."""
    w = _Writer(graph, weights)
    return w.build(), w.arrays


def save_model_json(
    graph: Graph, folder: str | Path, name: str = "model.json", *, weights: str = "weights.npz",
) -> Path:
    """Write ``graph`` as ``folder/name`` plus its arrays in ``folder/weights``; return the
    model path. Both files are written atomically (temporary file, then rename; the arrays
    first, so a model file never points at arrays that are not there yet).

    Reading the result back gives a graph equal to one read from model.json: node and constant
    names, order, dtypes and parameters are preserved.
    """
    from nmc.fileio import atomic_open

    doc, arrays = model_to_dict(graph, weights)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        text = format_json(doc) + "\n"
    except (TypeError, ValueError) as e:
        raise FrontendError(
            f"graph {graph.name}: cannot write model.json: attributes are not JSON ({e})"
        ) from None
    if arrays:
        with atomic_open(folder / weights, "wb") as f:
            np.savez(f, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    with atomic_open(folder / name, "w") as f:
        f.write(text)
    return folder / name
