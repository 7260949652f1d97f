"""The ``nmc`` command line.

Exit codes (also in the README):

====  ==========================================================================
0     success
1     user error: bad input, a network that does not fit, a corrupt image
2     usage error: unknown option or command, missing argument (click)
3     internal error: a bug in nmc (please report it with the message)
130   interrupted (Ctrl-C); no partial output is left behind
====  ==========================================================================
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import warnings

import click

import nmc
import nmc.commands
from ir.errors import NmcWarning
from nmc.errors import USER_ERRORS

EXIT_OK, EXIT_USER, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPT = 0, 1, 2, 3, 130


class UserFailure(click.ClickException):
    """A user error (NmcError or EmulatorError) carried through click: ``Error: ...``, exit 1."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.exit_code = getattr(error, "exit_code", EXIT_USER)
        self.error = error

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.message}", err=True)


class InternalFailure(click.ClickException):
    """An unexpected exception: a bug. Shown without a traceback unless NMC_DEBUG is set."""

    exit_code = EXIT_INTERNAL

    def show(self, file=None) -> None:
        click.echo(
            f"Internal error: {self.message}\n"
            "This is a bug in nmc; rerun with NMC_DEBUG=1 for the traceback and report it.",
            err=True,
        )


class NmcGroup(click.Group):
    """A click group that maps nmc's error families to messages and exit codes."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            raise UserFailure(e) from e
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPT)
        except Exception as e:
            if os.environ.get("NMC_DEBUG"):
                raise
            raise InternalFailure(f"{type(e).__name__}: {e}") from e


@click.group(cls=NmcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nmc.__version__, "--version", prog_name="nmc")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def cli(quiet: bool) -> None:
    """nmc: compile spiking networks to neuromorphic chip images and emulate them."""
    from nmc.progress import set_quiet

    set_quiet(quiet)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(nmc.commands.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"nmc.commands.{info.name}")
        for cmd in getattr(mod, "commands", ()):
            cli.add_command(cmd)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, NmcWarning):
        click.echo(f"Warning: {message}", err=True)
    else:  # pragma: no cover - third-party warnings keep their usual form
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True,
                   nl=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``nmc`` script and ``python -m nmc``."""
    warnings.showwarning = _show_warning
    cli.main(args=argv, prog_name="nmc")


# Commands are registered at import so that click's test runner sees them too.
_register_commands()
