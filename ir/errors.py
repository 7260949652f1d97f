"""Error hierarchy of the compiler side (``ir`` and ``nmc``).

Every error a user can cause derives from :class:`NmcError`. The CLI prints it as
``Error: <message>`` and exits with :attr:`NmcError.exit_code`, never with a traceback.

A good message names the object, the place (file:line:col, JSON pointer or core id), the value,
the limit and the fix, e.g.::

    population h1: tau_mem = -0.002 must be > 0; time constants are in seconds
"""

from __future__ import annotations


class NmcError(Exception):
    """Base of every user-facing error of nmc."""

    exit_code: int = 1


class IRError(NmcError):
    """A graph or node that breaks an IR rule (shapes, names, parameter ranges)."""


class VerifyError(IRError):
    """The verifier found one or more broken rules; ``problems`` lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        head = f"{len(self.problems)} problem(s) in graph" if len(self.problems) > 1 else ""
        body = "\n".join(f"  - {p}" for p in self.problems) if head else self.problems[0]
        super().__init__(f"{head}:\n{body}" if head else body)


class ParseError(NmcError):
    """A syntax or semantic error in a text file, with file:line:col, the line and a caret."""


class FrontendError(NmcError):
    """A model file (model.json, NIR, netx) that cannot be read into the IR."""


class TargetError(NmcError):
    """A target profile that is missing, malformed or out of range."""


class CompileError(NmcError):
    """A pass cannot lower, map or encode the graph for the chosen target."""


class ResourceError(NmcError):
    """A job that would need more memory (or other resource) than the allowed limit."""


class NmcWarning(UserWarning):
    """Something the user should know (a default assumed, a lossy step); the CLI prints it as
    ``Warning: ...`` on stderr."""
