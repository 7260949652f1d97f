"""``nmc fmt``: print ``.nmir`` files in canonical form, check them, or rewrite them in place."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ir.errors import NmcWarning, ParseError


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ParseError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ParseError(f"{path}: cannot read ({e.strerror})") from None


def _sidecar_lacks(graph, path: Path) -> list[str]:
    """Large constants of ``graph`` whose data is not in the sidecar beside ``path`` (they were
    written inline in the file, and the canonical text names them by hash only)."""
    import numpy as np

    from ir.text import INLINE_MAX, sidecar_path

    large = [k for k, a in graph.constants.items() if a.size > INLINE_MAX]
    if not large:
        return []
    sc = sidecar_path(path)
    if not sc.exists():
        return large
    try:
        with np.load(sc, allow_pickle=False) as z:
            held = set(z.files)
    except (OSError, ValueError):
        return large
    return [k for k in large if k not in held]


@click.command("fmt")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 and name the files that are not in canonical form.")
@click.option("-i", "--in-place", is_flag=True,
              help="Rewrite the files that are not canonical (atomically; writes the sidecar "
                   ".npz too when a large constant was inline).")
def fmt(files: tuple[Path, ...], check: bool, in_place: bool) -> None:
    """Print .nmir FILES in canonical form (what ir.text.print_graph emits).

    Without options the canonical text of each file goes to stdout, one after the other.
    Parsing checks every file fully (syntax, node fields, constant hashes against the sidecar).
    """
    from ir.text import parse, print_graph, save, sidecar_path

    if check and in_place:
        raise click.UsageError("--check and --in-place do not go together; pick one")
    changed: list[Path] = []
    for path in files:
        text = _read(path)
        graph = parse(text, filename=str(path), sidecar=sidecar_path(path))
        canonical = print_graph(graph)
        differs = canonical != text
        if check:
            if differs:
                changed.append(path)
        elif in_place:
            if differs:
                save(graph, path)
                click.echo(f"reformatted {path}", err=True)
        else:
            lacking = _sidecar_lacks(graph, path)
            if lacking:
                warnings.warn(
                    f"{path}: constant(s) {', '.join(lacking)} are larger than the inline limit; "
                    f"the canonical text names them by hash and needs their data in "
                    f"{sidecar_path(path)} (nmc fmt -i writes it)",
                    NmcWarning, stacklevel=1,
                )
            click.echo(canonical, nl=False)
    if changed:
        for path in changed:
            click.echo(f"would reformat {path}", err=True)
        click.echo(
            f"{len(changed)} of {len(files)} file(s) not in canonical form; "
            "run nmc fmt -i to rewrite them",
            err=True,
        )
        raise click.exceptions.Exit(1)


commands = [fmt]
