"""``nmc targets``: list the built-in target profiles; ``nmc targets show NAME|PATH``: one profile
with the source of every number."""

from __future__ import annotations

import click

from nmc.targets import list_profiles, load_profile


def profiles_table() -> str:
    """The table printed by ``nmc targets``: name, family, cores, neurons/core, source file."""
    rows = [("name", "family", "cores/chip", "neurons/core", "file")]
    for p in list_profiles():
        mesh = f"{p.get('chip.mesh_x')}x{p.get('chip.mesh_y')}"
        rows.append((p.name, p.family, f"{p.cores} ({mesh})", str(p.get("core.neurons")),
                     str(p.path.relative_to(p.path.parent.parent.parent))
                     if p.path.parent.name == "targets" else str(p.path)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


@click.group("targets", invoke_without_command=True)
@click.pass_context
def targets(ctx: click.Context) -> None:
    """List the target profiles (built-in; any .toml profile path works wherever a target is asked)."""
    if ctx.invoked_subcommand is None:
        click.echo(profiles_table())


@targets.command("show")
@click.argument("target")
def show(target: str) -> None:
    """Print one profile (built-in NAME or a .toml PATH) with the source of every number."""
    click.echo(load_profile(target).to_text())


commands = [targets]
