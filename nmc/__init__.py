"""nmc: a compiler and emulator for neuromorphic chips (TrueNorth-, Loihi-, BrainScaleS-2-style)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nmc")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+src"

from nmc.errors import NmcError  # noqa: E402

__all__ = ["NmcError", "__version__"]
