"""The error families the CLI and the API treat as user errors (printed, never a traceback)."""

from emulator.errors import EmulatorError, LoadError
from ir.errors import (
    CompileError,
    FrontendError,
    IRError,
    NmcError,
    ParseError,
    ResourceError,
    TargetError,
    VerifyError,
)

USER_ERRORS: tuple[type[Exception], ...] = (NmcError, EmulatorError)

__all__ = [
    "USER_ERRORS", "CompileError", "EmulatorError", "FrontendError", "IRError", "LoadError",
    "NmcError", "ParseError", "ResourceError", "TargetError", "VerifyError",
]
