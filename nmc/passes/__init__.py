"""The pass framework: named, pure, verified, timed transformations of an IR graph.

A pass is a frozen dataclass whose fields are its options::

    @register_pass
    @dataclass(frozen=True)
    class Partition(Pass):
        name: ClassVar[str] = "partition"
        needs: ClassVar[Stage] = Stage.QUANTIZED
        makes: ClassVar[Stage] = Stage.PARTITIONED
        max_neurons: int | None = None

        def run(self, graph, target):
            ...
            return graph.replace(stage=self.makes, mapping=...)

:func:`run_passes` runs a list of passes, verifies the graph after each (``ir.verify.verify``),
times each and dumps the ``.nmir`` text after the passes named in ``print_after``. Passes record
their decisions for the reports in ``graph.attrs["passes"][pass.name]`` (JSON-like values only).

Stage rule (:meth:`Pass.applies`): a pass runs on a graph at its ``needs`` stage; a graph that is
already at or past the pass's ``makes`` stage passes through unchanged (and is reported as skipped);
a graph at an earlier stage is a CompileError naming the pass that is missing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ir.errors import CompileError, VerifyError
from ir.graph import Graph, Stage

if TYPE_CHECKING:  # pragma: no cover
    from nmc.targets import Profile


@dataclass(frozen=True)
class Pass:
    """Base of all passes. Fields are the pass's options. Pure: ``run`` returns a new graph and
    never mutates its input."""

    name: ClassVar[str] = "pass"
    needs: ClassVar[Stage] = Stage.FLOAT
    makes: ClassVar[Stage] = Stage.FLOAT

    def run(self, graph: Graph, target: Profile) -> Graph:
        """Transform ``graph`` for ``target``; return the new graph at stage ``makes``."""
        raise NotImplementedError(f"pass {self.name} has no run()")

    def applies(self, graph: Graph, target: Profile) -> bool:
        """True when the pass must run on ``graph``; False when the graph is already past it.

        Raises CompileError when the graph is at an earlier stage than ``needs``.
        """
        if graph.stage == self.needs:
            return True
        if graph.stage.order >= self.makes.order:
            return False
        raise CompileError(
            f"pass {self.name}: graph {graph.name} is at stage {graph.stage.value}, the pass needs "
            f"stage {self.needs.value}; run the passes before it first"
        )

    def options(self) -> dict[str, Any]:
        """The option fields and their values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_PASSES: dict[str, type[Pass]] = {}


def register_pass(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass known by its ``name`` (for ``--print-after`` and options)."""
    name = cls.name
    if name in _PASSES and _PASSES[name] is not cls:
        prev = _PASSES[name]
        if (prev.__module__, prev.__qualname__) != (cls.__module__, cls.__qualname__):
            raise RuntimeError(f"pass {name!r} registered twice ({prev.__module__}, {cls.__module__})")
    _PASSES[name] = cls
    return cls


def _load_passes() -> None:
    # Import the modules that define passes so that the registry is complete (lazy: some are
    # written by others and may be absent while the tree is being built).
    import importlib
    import pkgutil

    import nmc.passes as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        try:
            importlib.import_module(f"nmc.passes.{info.name}")
        except ImportError:  # pragma: no cover - a pass module missing a dependency
            pass


def pass_registry() -> dict[str, type[Pass]]:
    """All registered passes by name."""
    _load_passes()
    return dict(_PASSES)


def make_pass(name: str, **options: Any) -> Pass:
    """Build a registered pass by name with options; CompileError on unknown names or options."""
    reg = pass_registry()
    if name not in reg:
        raise CompileError(f"unknown pass {name!r}; known passes: {', '.join(sorted(reg))}")
    cls = reg[name]
    known = {f.name for f in dataclasses.fields(cls)}
    for k in options:
        if k not in known:
            raise CompileError(
                f"pass {name}: unknown option {k!r}; options: {', '.join(sorted(known)) or 'none'}"
            )
    return cls(**options)


@dataclass
class PassRun:
    """Result of :func:`run_passes`.

    ``graph``: the final graph; ``timings``: seconds per pass (a pass that runs twice is keyed
    ``name#2``); ``dumps``: ``.nmir`` text after each pass named in ``print_after``; ``skipped``:
    passes the graph was already past.
    """

    graph: Graph
    timings: dict[str, float] = field(default_factory=dict)
    dumps: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _verify(graph: Graph, after: str | None) -> None:
    from ir.verify import verify  # written by another part of the project; import lazily

    try:
        verify(graph)
    except VerifyError as e:
        if after is None:
            raise
        # The input was valid, so an invalid result is a bug of the pass: say which.
        raise CompileError(f"pass {after} produced an invalid graph: {e}") from e


def run_passes(
    graph: Graph,
    passes: Sequence[Pass],
    target: Profile | str,
    *,
    print_after: Iterable[str] = (),
    on_pass: Callable[[Pass, Graph, float], None] | None = None,
    verify: bool = True,
) -> PassRun:
    """Run ``passes`` in order on ``graph`` for ``target`` (a Profile or a profile name/path).

    The input graph is verified first, then the output of every pass. ``print_after`` names passes
    (or ``"all"``) whose output is dumped as ``.nmir`` text into ``PassRun.dumps``; ``on_pass`` is
    called as ``on_pass(pass, graph, seconds)`` after each pass that ran.
    """
    from nmc.targets import load_profile

    profile = load_profile(target)
    wanted = set(print_after)
    names = {p.name for p in passes}
    unknown = wanted - names - {"all"}
    if unknown:
        raise CompileError(
            f"--print-after names {', '.join(sorted(unknown))}, which is not in this pass list "
            f"({', '.join(p.name for p in passes)})"
        )
    if verify:
        _verify(graph, None)
    result = PassRun(graph=graph)
    for p in passes:
        if not p.applies(graph, profile):
            result.skipped.append(p.name)
            continue
        t0 = time.perf_counter()
        out = p.run(graph, profile)
        seconds = time.perf_counter() - t0
        if not isinstance(out, Graph):
            raise CompileError(f"pass {p.name} returned {type(out).__name__}, not a Graph")
        if out.stage != p.makes:
            raise CompileError(
                f"pass {p.name} returned stage {out.stage.value}, declared {p.makes.value}"
            )
        if verify:
            _verify(out, p.name)
        key, k = p.name, 2
        while key in result.timings:
            key = f"{p.name}#{k}"
            k += 1
        result.timings[key] = seconds
        if "all" in wanted or p.name in wanted:
            from ir.text import print_graph  # written by another part of the project

            result.dumps[key] = print_graph(out)
        if on_pass is not None:
            on_pass(p, out, seconds)
        graph = out
    result.graph = graph
    return result


def record(graph_attrs: dict, pass_name: str, decisions: dict) -> dict:
    """A copy of ``graph_attrs`` with ``decisions`` stored under ``["passes"][pass_name]``."""
    attrs = dict(graph_attrs)
    passes = dict(attrs.get("passes", {}))
    passes[pass_name] = decisions
    attrs["passes"] = passes
    return attrs


__all__ = ["Pass", "PassRun", "make_pass", "pass_registry", "record", "register_pass", "run_passes"]
