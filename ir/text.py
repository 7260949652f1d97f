"""The ``.nmir`` text form of a graph: canonical printer, parser, sidecar ``.npz``.

Every stage of a graph prints as ``.nmir`` (see ``docs/nmir.md``) and the two round trips hold::

    parse(print_graph(g), sidecar=...) == g        # any graph the printer accepts
    print_graph(parse(t)) == t                     # t canonical (what the printer emits)

Layout of the canonical text, sections separated by one blank line, empty sections left out::

    nmir 1
    graph digits_mlp stage=float dt=0.001

    attrs = {"provenance": {"rule": "ann-to-snn conversion"}}

    const fc1.weight: f32[100, 64] sha256:3f0c2a9b1d4e5f60
    const fc1.bias: f32[3] = [0.1, 0.2, 0.3]

    node x = Input(shape=[64])
    node h1 = LIF(shape=[100], tau_mem=0.02, v_threshold=@h1.thr, reset="subtract")

    x -> fc1

Rules the printer follows (and so the canonical form):

* constants, nodes and edges in the graph's order (that order is part of graph equality);
* a node field equal to its declared default is left out; the others follow declaration order;
* a constant of at most :data:`INLINE_MAX` elements prints inline, a larger one as a content hash
  (:func:`ir.graph.array_hash`) whose data lives in the sidecar ``.npz`` beside the file;
* floats print in the shortest form that reads back to the identical value *of their dtype*
  (f16, f32 and f64 each), so every numeric dtype round-trips bit for bit (NaN prints as ``nan``:
  its sign and payload are not kept);
* ``attrs`` and ``mapping`` print as JSON (plus ``nan``/``inf``), on one line when it fits in
  :data:`WIDTH` columns, else one object member per line; object keys keep the graph's order.

The printer and the parser know no node kind by name: they read each kind's fields and their
``kind`` metadata from :mod:`ir.nodes` (``node_kinds``, ``kind_class``, ``field_specs``), so a kind
registered anywhere (``ir.native.*``) prints and parses with no change here.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ir.errors import IRError, NmcError, ParseError
from ir.graph import Graph, Stage, array_hash
from ir.nodes import Ref, field_specs, kind_class, node_kinds

__all__ = [
    "DTYPES", "FORMAT_VERSION", "GRAMMAR_PATH", "INLINE_MAX", "WIDTH", "load", "parse",
    "print_graph", "save", "sidecar_path",
]

FORMAT_VERSION = 1
"""The ``nmir N`` line the printer writes; the parser reads this version only."""

INLINE_MAX = 16
"""Constants with at most this many elements print inline; larger ones go to the sidecar."""

WIDTH = 100
"""Line width the printer aims for in ``attrs``/``mapping`` (node lines are never broken)."""

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

DTYPES: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "i8": np.dtype(np.int8), "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32), "i64": np.dtype(np.int64),
    "u8": np.dtype(np.uint8), "u16": np.dtype(np.uint16),
    "u32": np.dtype(np.uint32), "u64": np.dtype(np.uint64),
    "f16": np.dtype(np.float16), "f32": np.dtype(np.float32), "f64": np.dtype(np.float64),
}
"""Text name of every dtype a constant may have."""

_DTYPE_NAME = {(d.kind, d.itemsize): name for name, d in DTYPES.items()}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")  # the grammar's NAME


# ==========================================================================================
# Printer
# ==========================================================================================
def print_graph(g: Graph) -> str:
    """The canonical ``.nmir`` text of ``g`` (ends with a newline).

    Large constants appear as content hashes only: write their data with :func:`save`, or pass
    ``sidecar=g.constants`` to :func:`parse`. Raises IRError for what the text cannot hold (a
    constant of a non-numeric dtype, attrs with non-JSON values, names the grammar cannot read).
    """
    where = f"graph {g.name}"
    try:
        dt = float(g.dt)
    except (TypeError, ValueError):
        raise IRError(f"{where}: dt = {g.dt!r} must be a number of seconds") from None
    name = g.name if isinstance(g.name, str) and _NAME_RE.match(g.name) else _fmt_str(str(g.name))
    sections = [[f"nmir {FORMAT_VERSION}", f"graph {name} stage={Stage(g.stage).value} dt={_fmt_f64(dt)}"]]
    if g.attrs:
        if not isinstance(g.attrs, Mapping):
            raise IRError(f"{where}: attrs must be a dict, got {type(g.attrs).__name__}")
        sections.append(["attrs = " + _pretty(g.attrs, 0, len("attrs = "), f"{where}: attrs")])
    if g.mapping is not None:
        sections.append(["mapping = " + _pretty(g.mapping, 0, len("mapping = "), f"{where}: mapping")])
    if g.constants:
        sections.append([_const_line(where, k, a) for k, a in g.constants.items()])
    if g.nodes:
        sections.append([_node_line(n) for n in g.nodes.values()])
    if g.edges:
        lines = []
        for a, b in g.edges:
            for end in (a, b):
                if not _NAME_RE.match(end):
                    raise IRError(f"{where}: edge {a} -> {b} names {end!r}, which is not a node name")
            lines.append(f"{a} -> {b}")
        sections.append(lines)
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


def _fmt_f64(x: float) -> str:
    """A Python float: repr is the shortest text that reads back to the same double."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(float(x))


def _fmt_elem_float(x: np.floating) -> str:
    """One element of a float constant, in the shortest text that reads back to the same value
    *of its own dtype* when parsed as a double and then rounded to the dtype.

    numpy's ``str`` gives the shortest digits for f16/f32; double rounding (text -> f64 -> f32)
    could in principle move such a value, so it is checked, and the exact f64 text (every f16 and
    f32 value is a double) is the fallback.
    """
    f = float(x)
    if math.isnan(f) or math.isinf(f) or x.dtype == np.float64:
        return _fmt_f64(f)
    s = str(x)
    if any(c in s for c in ".eE") and x.dtype.type(float(s)).tobytes() == x.tobytes():
        return s
    return repr(f)


def _fmt_str(s: str) -> str:
    # Readable non-ASCII text; escapes only where a lone surrogate could not be written as UTF-8.
    ascii_only = any("\ud800" <= c <= "\udfff" for c in s)
    return json.dumps(s, ensure_ascii=ascii_only)


def _flat(v: Any, where: str) -> str:
    """A JSON-like value on one line (also the form of node field values)."""
    if v is None:
        return "null"
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return _fmt_f64(float(v))
    if isinstance(v, str):
        return _fmt_str(v)
    if isinstance(v, Ref):
        return "@" + v.name
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_flat(x, f"{where}[{i}]") for i, x in enumerate(v)) + "]"
    if isinstance(v, Mapping):
        parts = []
        for k, x in v.items():
            if not isinstance(k, str):
                raise IRError(f"{where}: key {k!r} must be a string (the text form is JSON-like)")
            parts.append(f"{_fmt_str(k)}: {_flat(x, f'{where}[{k!r}]')}")
        return "{" + ", ".join(parts) + "}"
    raise IRError(
        f"{where}: value {v!r} of type {type(v).__name__} cannot be printed; use dict, list, str, "
        "int, float, bool or None (put arrays in the constant pool and name them \"@name\")"
    )


def _is_scalar(v: Any) -> bool:
    return not isinstance(v, list | tuple | Mapping)


def _pretty(v: Any, indent: int, start: int, where: str) -> str:
    """A JSON-like value starting at column ``start``, broken over lines when it is too wide."""
    flat = _flat(v, where)
    if start + len(flat) <= WIDTH or _is_scalar(v) or not v:
        return flat
    pad = " " * (indent + 2)
    close = " " * indent
    if isinstance(v, Mapping):
        items = []
        for k, x in v.items():
            key = _fmt_str(k) + ": "
            items.append(pad + key + _pretty(x, indent + 2, indent + 2 + len(key), f"{where}[{k!r}]"))
        return "{\n" + ",\n".join(items) + "\n" + close + "}"
    if all(_is_scalar(x) for x in v):
        # Scalars fill lines (like numpy's array printing) instead of one per line.
        pieces = [_flat(x, where) + ("," if i < len(v) - 1 else "") for i, x in enumerate(v)]
        lines, cur = [], ""
        for p in pieces:
            if cur and len(pad) + len(cur) + 1 + len(p) > WIDTH:
                lines.append(cur)
                cur = p
            else:
                cur = f"{cur} {p}" if cur else p
        lines.append(cur)
        return "[\n" + "\n".join(pad + line for line in lines) + "\n" + close + "]"
    items = [pad + _pretty(x, indent + 2, indent + 2, f"{where}[{i}]") for i, x in enumerate(v)]
    return "[\n" + ",\n".join(items) + "\n" + close + "]"


def _dtype_name(dtype: np.dtype, where: str) -> str:
    name = _DTYPE_NAME.get((dtype.kind, dtype.itemsize))
    if name is None:
        raise IRError(
            f"{where}: dtype {dtype} cannot be written as .nmir; use one of "
            f"{', '.join(DTYPES)}"
        )
    return name


def _native(a: np.ndarray) -> np.ndarray:
    """The array in native byte order (what the text and the sidecar hold)."""
    a = np.asarray(a)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _const_line(where: str, name: str, a: np.ndarray) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise IRError(
            f"{where}: constant name {name!r} is not valid: use letters, digits, '_' and '.', "
            "starting with a letter or '_'"
        )
    a = _native(a)
    type_ = f"{_dtype_name(a.dtype, f'{where}: constant {name}')}[{', '.join(map(str, a.shape))}]"
    if a.size > INLINE_MAX:
        return f"const {name}: {type_} sha256:{array_hash(a)}"
    if a.dtype.kind == "b":
        items = ["true" if x else "false" for x in a.ravel()]
    elif a.dtype.kind in "iu":
        items = [str(int(x)) for x in a.ravel()]
    else:
        items = [_fmt_elem_float(x) for x in a.ravel()]
    return f"const {name}: {type_} = {_nest(items, a.shape)}"


def _nest(items: list[str], shape: tuple[int, ...]) -> str:
    """Element texts (C order) as nested lists of ``shape``; a 0-d array is its element."""
    if not shape:
        return items[0]
    if len(shape) == 1:
        return "[" + ", ".join(items) + "]"
    step = math.prod(shape[1:])
    return "[" + ", ".join(
        _nest(items[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])
    ) + "]"


def _is_default(value: Any, f: dataclasses.Field) -> bool:
    if f.default is dataclasses.MISSING:
        return False
    d = f.default
    if isinstance(value, bool) != isinstance(d, bool) or type(value) is Ref or type(d) is Ref:
        return type(value) is type(d) and value == d
    try:
        return bool(value == d)
    except (TypeError, ValueError):
        return False


def _node_line(node: Any) -> str:
    fields = {f.name: f for f in dataclasses.fields(node)}
    parts = []
    for fname, _md in field_specs(node):
        f = fields[fname]
        value = getattr(node, fname)
        if not f.init or _is_default(value, f):
            continue
        parts.append(f"{fname}={_flat(value, f'{node.kind} {node.name}: field {fname}')}")
    return f"node {node.name} = {node.kind}({', '.join(parts)})"


# ==========================================================================================
# Saving and loading files
# ==========================================================================================
def sidecar_path(path: str | os.PathLike) -> Path:
    """Where the data of the large constants of ``path`` lives: the same name with ``.npz``."""
    return Path(path).with_suffix(".npz")


def save(g: Graph, path: str | os.PathLike) -> Path:
    """Write ``g`` as ``path`` (canonical text) and, when a constant has more than
    :data:`INLINE_MAX` elements, its data as ``sidecar_path(path)``.

    Each file is written atomically (a temporary file in the same folder, then a rename); the
    sidecar goes first so the text never names data that is not there. The sidecar is a plain
    ``.npz`` (``numpy.load`` reads it) with fixed timestamps: same graph, same bytes.
    """
    path = Path(path)
    text = print_graph(g)
    large = {k: _native(a) for k, a in g.constants.items() if np.asarray(a).size > INLINE_MAX}
    try:
        if large:
            _atomic_write(sidecar_path(path), lambda f: _write_npz(f, large))
        _atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    except OSError as e:
        raise NmcError(f"{e.filename or path}: cannot write ({e.strerror or e})") from None
    return path


def _write_npz(f: Any, arrays: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
        for k, a in arrays.items():
            info = zipfile.ZipInfo(k + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with z.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(binary_file)`` into a temporary file beside ``path``, then rename."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load(path: str | os.PathLike) -> Graph:
    """Read a ``.nmir`` file, and its sidecar ``.npz`` when it names large constants."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ParseError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ParseError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ParseError(f"{path}: cannot read ({e.strerror})") from None
    return parse(text, filename=str(path), sidecar=sidecar_path(path))


# ==========================================================================================
# Parser
# ==========================================================================================
@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(
        GRAMMAR_PATH.read_text(), parser="lalr", lexer="contextual",
        propagate_positions=True, maybe_placeholders=True,
    )


def parse(
    text: str,
    *,
    filename: str = "<string>",
    sidecar: str | os.PathLike | Mapping[str, np.ndarray] | None = None,
) -> Graph:
    """Parse ``.nmir`` text into a Graph.

    ``sidecar`` supplies the data of constants written as ``sha256:<hash>``: the path of an
    ``.npz``, or a mapping from constant name to array; it is read only if the text needs it, and
    every array is checked against the dtype, shape and hash the text declares. Errors raise
    ParseError as ``file:line:col: message``, then the line, then a caret under the column.
    """
    return _Reader(text, filename, sidecar).read()


# Words for terminals in syntax errors.
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a string ("...")',
    "REF": "a constant reference (@name)",
    "HASH": "a content hash (sha256:...)",
    "NODE": "'node'",
    "CONST": "'const'",
    "ATTRS": "'attrs'",
    "MAPPING": "'mapping'",
    "TRUE": "true",
    "FALSE": "false",
    "NULL": "null",
    "NAN": "nan",
    "INF": "inf",
    "MINUS_INF": "-inf",
    "$END": "the end of the file",
}
_VALUE_START = {"NUMBER", "STRING", "REF", "TRUE", "FALSE", "NULL", "NAN", "INF", "MINUS_INF",
                "LSQB", "LBRACE"}
_STATEMENT_START = {"NODE", "CONST", "ATTRS", "MAPPING", "NAME"}


def _acceptable(state: Any) -> set[str]:
    """The terminals the LALR parser in ``state`` can really shift next.

    The lexer's own list is the state's lookahead set, which LALR merges across contexts (after a
    number it would offer ']' even at the top level); feeding each candidate to a copy of the
    parser state, as lark's interactive parser does, keeps only the true ones.
    """
    ok = set()
    for name in state.parse_conf.parse_table.states[state.position]:
        if not name.isupper() and name != "$END":
            continue
        trial = state.copy()
        try:
            trial.feed_token(Token(name, ""), name == "$END")
        except UnexpectedInput:
            continue
        ok.add(name)
    return ok


def _one_of(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


class _Reader:
    """One parse: turns the lark tree into a Graph, with located errors."""

    def __init__(self, text: str, filename: str, sidecar: Any):
        self.text = text
        self.filename = filename
        self.sidecar = sidecar
        self.lines = text.split("\n")
        self._npz: Any = None
        self._npz_error: str | None = None

    # ---- errors ---------------------------------------------------------------------------
    def error(self, line: int, col: int, message: str) -> ParseError:
        line = max(1, min(line, len(self.lines)))
        src = self.lines[line - 1].rstrip("\r")
        col = max(1, min(col, len(src) + 1))
        caret = "".join(c if c == "\t" else " " for c in src[: col - 1]) + "^"
        return ParseError(f"{self.filename}:{line}:{col}: {message}\n{src}\n{caret}")

    def error_at(self, where: Token | Tree, message: str) -> ParseError:
        if isinstance(where, Token):
            return self.error(where.line, where.column, message)
        return self.error(where.meta.line, where.meta.column, message)

    def syntax_error(self, e: UnexpectedInput) -> ParseError:
        p = _parser()
        if isinstance(e, UnexpectedToken):
            expected = set(e.accepts or e.expected)
            tok = e.token
            if tok.type == "$END":
                got = "the end of the file"
                line, col = len(self.lines), len(self.lines[-1]) + 1
                if not self.lines[-1] and len(self.lines) > 1:
                    line, col = len(self.lines) - 1, len(self.lines[-2].rstrip("\r")) + 1
            else:
                got = repr(tok.value if len(tok.value) <= 24 else tok.value[:21] + "...")
                line, col = tok.line, tok.column
        elif isinstance(e, UnexpectedCharacters):
            expected = _acceptable(e.state) if e.state is not None else set(e.allowed or ())
            got = f"character {e.char!r}"
            line, col = e.line, e.column
        else:  # UnexpectedEOF
            expected = set(getattr(e, "expected", ()) or ())
            got = "the end of the file"
            line, col = len(self.lines), len(self.lines[-1]) + 1
        words: list[str] = []
        if _STATEMENT_START <= expected:
            words.append("a statement (node, const, attrs, mapping or an edge 'a -> b')")
            expected -= _STATEMENT_START
        if _VALUE_START <= expected:
            words.append("a value (number, string, true, false, null, @constant, [...] or {...})")
            expected -= _VALUE_START
        for name in sorted(expected, key=lambda n: (n == "$END", n)):
            if name in _WORDS:
                words.append(_WORDS[name])
                continue
            try:
                pattern = p.get_terminal(name).pattern
            except KeyError:
                words.append(name)
                continue
            words.append(f"'{pattern.value}'" if pattern.type == "str" else name.lower())
        message = f"expected {_one_of(words)}, got {got}" if words else f"unexpected {got}"
        return self.error(line, col, f"syntax error: {message}")

    # ---- values ---------------------------------------------------------------------------
    def value(self, t: Tree) -> Any:
        """The Python value of a value tree (lists stay lists here)."""
        kind = t.data
        if kind == "number":
            return _number(t.children[0])
        if kind == "string":
            return json.loads(t.children[0])
        if kind == "ref":
            return Ref(t.children[0][1:])
        if kind in _LITERALS:
            return _LITERALS[kind]
        if kind == "list":
            return [self.value(c) for c in t.children if c is not None]
        if kind == "object":
            out: dict[str, Any] = {}
            for pair in (c for c in t.children if c is not None):
                key_tok, vtree = pair.children
                key = json.loads(key_tok)
                if key in out:
                    raise self.error_at(key_tok, f"duplicate key {key_tok} in object")
                out[key] = self.value(vtree)
            return out
        raise AssertionError(f"unknown value tree {kind}")  # pragma: no cover - grammar bug

    # ---- the graph ------------------------------------------------------------------------
    def read(self) -> Graph:
        try:
            tree = _parser().parse(self.text)
        except UnexpectedInput as e:
            raise self.syntax_error(e) from None
        try:
            return self._graph(tree)
        finally:
            if self._npz is not None:
                self._npz.close()

    def _graph(self, tree: Tree) -> Graph:
        items = list(tree.children)
        if items and items[0] is not None and items[0].data == "version":
            tok = items[0].children[0]
            if tok != str(FORMAT_VERSION):
                raise self.error_at(
                    tok, f"unsupported .nmir version {tok}; this nmc reads version {FORMAT_VERSION}"
                )
        items = [t for t in items if t is not None and t.data != "version"]
        header, body = items[0], items[1:]
        name, stage, dt = self._header(header)

        self.constants: dict[str, np.ndarray] = {}
        const_at: dict[str, Token] = {}
        nodes: dict[str, Any] = {}
        node_at: dict[str, Token] = {}
        refs: list[tuple[str, Token]] = []  # (node, REF token), file order
        edges: list[tuple[Token, Token]] = []
        attrs: dict[str, Any] = {}
        mapping: Any = None
        seen: dict[str, Token] = {}

        for st in body:
            kind = st.data
            if kind in ("attrs_stmt", "mapping_stmt"):
                kw, vtree = st.children
                if kw in seen:
                    raise self.error_at(
                        kw, f"duplicate {kw} (first given at line {seen[kw].line}); merge them"
                    )
                seen[str(kw)] = kw
                value = self.value(vtree)
                if kw == "attrs":
                    if not isinstance(value, dict):
                        raise self.error_at(vtree, "attrs must be an object {...}")
                    attrs = value
                else:
                    if value is not None and not isinstance(value, dict):
                        raise self.error_at(vtree, "mapping must be an object {...} or null")
                    mapping = value
            elif kind in ("const_inline", "const_ref"):
                _kw, name_tok, dtype_tree, data = st.children
                cname = str(name_tok)
                if cname in const_at:
                    raise self.error_at(
                        name_tok,
                        f"duplicate constant {cname} (first defined at line {const_at[cname].line})",
                    )
                const_at[cname] = name_tok
                dtype, shape = self._dtype(dtype_tree)
                if kind == "const_inline":
                    arr = self._inline(cname, dtype, shape, data)
                else:
                    arr = self._from_sidecar(cname, dtype, shape, data, name_tok)
                self.constants[cname] = arr
            elif kind == "node_stmt":
                node = self._node(st)
                name_tok = st.children[1]
                if node.name in nodes:
                    raise self.error_at(
                        name_tok,
                        f"duplicate node {node.name} (first defined at line "
                        f"{node_at[node.name].line})",
                    )
                nodes[node.name] = node
                node_at[node.name] = name_tok
                for tok in st.scan_values(lambda v: isinstance(v, Token) and v.type == "REF"):
                    refs.append((node.name, tok))
            elif kind == "edge_stmt":
                a, b = st.children
                edges.append((a, b))
            else:  # pragma: no cover - grammar bug
                raise AssertionError(kind)

        for nname, tok in refs:
            if tok[1:] not in self.constants:
                node = nodes[nname]
                raise self.error_at(
                    tok,
                    f"{node.kind} {nname}: no constant named {tok}"
                    + _did_you_mean(tok[1:], self.constants, prefix="@"),
                )
        for a, b in edges:
            for end in (a, b):
                if end not in nodes:
                    raise self.error_at(
                        end,
                        f"edge {a} -> {b}: no node named {str(end)!r}" + _did_you_mean(end, nodes),
                    )
        try:
            return Graph(
                name=name, nodes=nodes, edges=tuple((str(a), str(b)) for a, b in edges),
                constants=self.constants, stage=stage, dt=dt, attrs=attrs, mapping=mapping,
            )
        except IRError as e:  # pragma: no cover - the checks above cover what Graph checks
            raise self.error(1, 1, str(e)) from None

    def _header(self, header: Tree) -> tuple[str, Stage, float]:
        gname, stage_tok, dt_tree = header.children
        name_tok = gname.children[0]
        name = json.loads(name_tok) if name_tok.type == "STRING" else str(name_tok)
        try:
            stage = Stage(str(stage_tok))
        except ValueError:
            raise self.error_at(
                stage_tok,
                f"unknown stage {str(stage_tok)!r}; use one of {', '.join(s.value for s in Stage)}",
            ) from None
        dt = self.value(dt_tree)
        if isinstance(dt, bool) or not isinstance(dt, int | float) or not (
            math.isfinite(dt) and dt > 0
        ):
            raise self.error_at(dt_tree, f"dt = {_flat_or_repr(dt)} must be a number of seconds > 0")
        return name, stage, float(dt)

    # ---- constants ------------------------------------------------------------------------
    def _dtype(self, t: Tree) -> tuple[np.dtype, tuple[int, ...]]:
        name_tok, *dims = t.children
        if str(name_tok) not in DTYPES:
            raise self.error_at(
                name_tok,
                f"unknown dtype {str(name_tok)!r}; use one of {', '.join(DTYPES)}",
            )
        shape = []
        for d in dims:
            if d is None:
                continue
            if not d.isdigit():
                raise self.error_at(d, f"dimension {d} must be a non-negative integer")
            shape.append(int(d))
        return DTYPES[str(name_tok)], tuple(shape)

    def _inline(self, cname: str, dtype: np.dtype, shape: tuple[int, ...], data: Tree) -> np.ndarray:
        tname = f"{_DTYPE_NAME[(dtype.kind, dtype.itemsize)]}[{', '.join(map(str, shape))}]"
        where = f"const {cname}: {tname}"
        leaves: list[Tree] = []

        def collect(t: Tree, axis: int) -> None:
            if axis == len(shape):
                if t.data in ("list", "object"):
                    raise self.error_at(
                        t, f"{where}: expected a single value here (the shape has {len(shape)} "
                        f"ax{'i' if len(shape) == 1 else 'e'}s), got a {t.data}",
                    )
                leaves.append(t)
                return
            if t.data != "list":
                raise self.error_at(
                    t, f"{where}: expected a list of {shape[axis]} values along axis {axis}, "
                    f"got {_describe(t)}",
                )
            items = [c for c in t.children if c is not None]
            if len(items) != shape[axis]:
                raise self.error_at(
                    t, f"{where}: {len(items)} values along axis {axis}, the shape says "
                    f"{shape[axis]}",
                )
            for c in items:
                collect(c, axis + 1)

        collect(data, 0)
        if dtype.kind == "b":
            vals = []
            for t in leaves:
                if t.data not in ("true", "false"):
                    raise self.error_at(t, f"{where}: expected true or false, got {_describe(t)}")
                vals.append(t.data == "true")
            arr = np.array(vals, dtype=dtype)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            ints = []
            for t in leaves:
                v = self.value(t) if t.data == "number" else None
                if not isinstance(v, int):
                    raise self.error_at(t, f"{where}: expected an integer, got {_describe(t)}")
                if not info.min <= v <= info.max:
                    raise self.error_at(
                        t, f"{where}: {v} is outside the range of {tname.split('[')[0]} "
                        f"({info.min}..{info.max})",
                    )
                ints.append(v)
            arr = np.array(ints, dtype=dtype)
        else:
            floats = []
            for t in leaves:
                if t.data not in ("number", "nan", "inf", "minus_inf"):
                    raise self.error_at(t, f"{where}: expected a number, got {_describe(t)}")
                text = str(t.children[0])
                f = float(text)
                if math.isinf(f) and t.data == "number":
                    raise self.error_at(t, f"{where}: {text} is too large for f64")
                floats.append(f)
            wide = np.array(floats, dtype=np.float64)
            with np.errstate(over="ignore"):
                arr = wide.astype(dtype)
            bad = np.flatnonzero(np.isfinite(wide) & ~np.isfinite(arr))
            if bad.size:
                t = leaves[int(bad[0])]
                raise self.error_at(
                    t, f"{where}: {t.children[0]} is too large for {tname.split('[')[0]} "
                    f"(largest {np.finfo(dtype).max})",
                )
        return arr.reshape(shape)

    def _open_sidecar(self, where_tok: Token, cname: str) -> Any:
        """The sidecar as a name -> array lookup (opened once, on first use)."""
        if self._npz is not None:
            return self._npz
        sc = self.sidecar
        if sc is None:
            raise self.error_at(
                where_tok,
                f"const {cname}: its data is in a sidecar .npz, but none was given; read the file "
                "with ir.text.load (it opens the .npz beside the .nmir) or pass sidecar=...",
            )
        if isinstance(sc, Mapping):
            self._npz = _DictSidecar(sc)
            return self._npz
        path = Path(sc)
        if not path.exists():
            raise self.error_at(
                where_tok,
                f"const {cname}: sidecar {path} not found; it holds the data of the large "
                "constants and must sit beside the .nmir file (ir.text.save writes both)",
            )
        try:
            self._npz = np.load(path, allow_pickle=False)
            if not hasattr(self._npz, "files"):
                raise ValueError("it holds a single array, not an .npz archive")
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            self._npz = None
            raise self.error_at(
                where_tok, f"const {cname}: cannot read sidecar {path} ({e})"
            ) from None
        return self._npz

    def _from_sidecar(
        self, cname: str, dtype: np.dtype, shape: tuple[int, ...], hash_tok: Token, name_tok: Token
    ) -> np.ndarray:
        npz = self._open_sidecar(name_tok, cname)
        label = self._sidecar_label()
        if cname not in npz.files:
            raise self.error_at(name_tok, f"const {cname}: sidecar {label} has no array {cname!r}")
        declared = f"{_DTYPE_NAME[(dtype.kind, dtype.itemsize)]}[{', '.join(map(str, shape))}]"
        head = _npz_header(npz, cname)
        if head is not None:  # refuse a mismatch from the header, before allocating the data
            h_dtype, h_shape = head
            h_name = _DTYPE_NAME.get((h_dtype.kind, h_dtype.itemsize), str(h_dtype))
            held = f"{h_name}[{', '.join(map(str, h_shape))}]"
            if held != declared:
                raise self.error_at(
                    name_tok,
                    f"const {cname}: sidecar {label} holds {held}, the text declares {declared}",
                )
        try:
            arr = np.asarray(npz[cname])
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise self.error_at(
                name_tok, f"const {cname}: cannot read {cname!r} from sidecar {label} ({e})"
            ) from None
        held_dtype = _DTYPE_NAME.get((arr.dtype.kind, arr.dtype.itemsize), str(arr.dtype))
        held = f"{held_dtype}[{', '.join(map(str, arr.shape))}]"
        if held != declared:
            raise self.error_at(
                name_tok,
                f"const {cname}: sidecar {label} holds {held}, the text declares {declared}",
            )
        arr = _native(arr)
        want = hash_tok.split(":", 1)[1].lower()
        got = array_hash(arr)
        if got != want:
            raise self.error_at(
                hash_tok,
                f"const {cname}: content hash mismatch: the text says sha256:{want}, sidecar "
                f"{label} holds sha256:{got}; the sidecar was not written with this file "
                "(write both with ir.text.save)",
            )
        return arr

    def _sidecar_label(self) -> str:
        return "(dict)" if isinstance(self.sidecar, Mapping) else str(self.sidecar)

    # ---- nodes ----------------------------------------------------------------------------
    def _node(self, st: Tree) -> Any:
        _kw, name_tok, kind_tok, *field_trees = st.children
        field_trees = [f for f in field_trees if f is not None]
        kinds = node_kinds()
        if str(kind_tok) not in kinds:
            close = difflib.get_close_matches(str(kind_tok), kinds, n=3, cutoff=0.6)
            hint = (
                f"; did you mean {_one_of(close)}?" if close
                else f"; known kinds: {', '.join(sorted(kinds))}"
            )
            raise self.error_at(kind_tok, f"unknown node kind {str(kind_tok)!r}{hint}")
        cls = kind_class(str(kind_tok))
        owner = f"{cls.kind} {name_tok}"
        fields = {
            f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "name"
        }
        order = [n for n, _ in field_specs(cls) if n in fields]
        kwargs: dict[str, Any] = {}
        for ft in field_trees:
            fname_tok, vtree = ft.children
            fname = str(fname_tok)
            if fname not in fields:
                close = difflib.get_close_matches(fname, order, n=3, cutoff=0.6)
                hint = f"did you mean {_one_of(close)}? " if close else ""
                raise self.error_at(
                    fname_tok,
                    f"{owner}: unknown field {fname!r}; {hint}{cls.kind} has fields "
                    f"{', '.join(order)}",
                )
            if fname in kwargs:
                raise self.error_at(fname_tok, f"{owner}: field {fname} is given twice")
            kwargs[fname] = _tuples(self.value(vtree))
        missing = [
            n for n in order if n not in kwargs
            and fields[n].default is dataclasses.MISSING
            and fields[n].default_factory is dataclasses.MISSING
        ]
        if missing:
            raise self.error_at(
                kind_tok,
                f"{owner}: missing required field{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}",
            )
        try:
            return cls(name=str(name_tok), **kwargs)
        except IRError as e:
            raise self.error_at(name_tok, str(e)) from None
        except (TypeError, ValueError, ArithmeticError, IndexError, KeyError, AttributeError) as e:
            # A kind's own checks tripped over a value of the wrong type (e.g. a number where
            # it indexes a tuple): still the user's input, so a located error, not a traceback.
            raise self.error_at(name_tok, f"{owner}: bad field value ({e})") from None


def _npz_header(npz: Any, name: str) -> tuple[np.dtype, tuple[int, ...]] | None:
    """(dtype, shape) from an .npz member's .npy header without reading its data; None when the
    sidecar is not a zip archive (a dict) or the header cannot be read (loading then reports)."""
    zf = getattr(npz, "zip", None)
    if zf is None:
        return None
    try:
        with zf.open(name + ".npy") as f:
            version = np.lib.format.read_magic(f)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, _fortran, dt = reader(f)
        return np.dtype(dt), tuple(int(n) for n in shape)
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


class _DictSidecar:
    """A mapping of arrays seen through the small part of NpzFile's interface the reader uses."""

    def __init__(self, arrays: Mapping[str, Any]):
        self._arrays = arrays
        self.files = list(arrays)

    def __getitem__(self, key: str) -> Any:
        return self._arrays[key]

    def close(self) -> None:
        pass


_LITERALS = {
    "true": True, "false": False, "null": None,
    "nan": math.nan, "inf": math.inf, "minus_inf": -math.inf,
}


def _number(tok: str) -> int | float:
    """A number token: an int unless it has a '.' or an exponent (then a float)."""
    return float(tok) if any(c in tok for c in ".eE") else int(tok)


def _tuples(v: Any) -> Any:
    """Lists become tuples (node fields are frozen and compare by value)."""
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    return v


def _describe(t: Tree) -> str:
    if t.data in ("list", "object"):
        return f"a {t.data}"
    if t.data == "string":
        return f"the string {t.children[0]}"
    return str(t.children[0])


def _flat_or_repr(v: Any) -> str:
    try:
        return _flat(v, "")
    except IRError:
        return repr(v)


def _did_you_mean(word: str, candidates: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {_one_of([prefix + c for c in close])}?" if close else ""
