"""Frontends: readers that turn a model file into an IR graph, chosen by one registry.

The registry maps a file suffix to a reader given as a lazily imported ``"module:function"``
string, so that reading a model.json never imports h5py or nir, and a reader whose optional
dependency is missing fails with the extra to install rather than an ImportError:

=========  =====================  ==============================================  ==========
suffix     format                 reader                                          extra
=========  =====================  ==============================================  ==========
``.json``  model.json             ``nmc.frontends.model_json:load_model_json``    -
``.nir``   NIR graph (HDF5)       ``nmc.frontends.nir:load_nir``                  ``nir``
``.net``   lava-dl netx (HDF5)    ``nmc.frontends.netx:load_netx``                ``nir``
``.nmir``  nmc IR text            ``ir.text:load``                                -
=========  =====================  ==============================================  ==========

A folder holding a ``model.json`` reads that file. A file whose suffix is not in the table is
recognised by its content when possible (a JSON object; an HDF5 file with NIR's ``node`` group or
netx's ``layer`` group); otherwise the error lists the known suffixes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ir.errors import FrontendError
from ir.graph import Graph

__all__ = ["Frontend", "frontend_for", "known_suffixes", "load_model", "register_frontend"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Frontend:
    """One reader: the format's name, its ``"module:function"`` and the pip extra it needs."""

    format: str
    reader: str
    extra: str | None = None

    def load_function(self):
        """Import the reader; a missing module becomes a FrontendError naming what to install."""
        module, _, func = self.reader.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            missing = e.name or module
            if self.extra:
                fix = f"install the extra: pip install 'nmc[{self.extra}]'"
            else:
                fix = "this nmc installation is incomplete; reinstall nmc"
            raise FrontendError(
                f"reading {self.format} files needs the module {missing}, which is not "
                f"available; {fix}"
            ) from None
        try:
            return getattr(mod, func)
        except AttributeError:
            raise FrontendError(
                f"reading {self.format} files needs {self.reader}, which this nmc lacks; "
                "reinstall nmc"
            ) from None


_REGISTRY: dict[str, Frontend] = {
    ".json": Frontend("model.json", "nmc.frontends.model_json:load_model_json"),
    ".nir": Frontend("NIR", "nmc.frontends.nir:load_nir", "nir"),
    # netx files are HDF5: h5py comes with the nir extra.
    ".net": Frontend("lava-dl netx", "nmc.frontends.netx:load_netx", "nir"),
    ".nmir": Frontend("nmir text", "ir.text:load"),
}


def register_frontend(suffix: str, reader: str, *, format: str, extra: str | None = None) -> None:
    """Map a file suffix (e.g. ``".h5"``) to a reader ``"module:function"``."""
    if not suffix.startswith("."):
        raise ValueError(f"suffix {suffix!r} must start with '.'")
    _REGISTRY[suffix.lower()] = Frontend(format, reader, extra)


def known_suffixes() -> list[str]:
    """The registered suffixes, in registration order."""
    return list(_REGISTRY)


def _sniff(path: Path) -> str | None:
    """The suffix whose format the file's content shows, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(_HDF5_MAGIC):
        try:
            import h5py
        except ImportError:
            return None
        try:
            with h5py.File(path, "r") as h:
                if "node" in h:
                    return ".nir"
                if "layer" in h:
                    return ".net"
        except OSError:
            return None
        return None
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"{"):
        return ".json"
    return None


def frontend_for(path: str | Path) -> Frontend:
    """The frontend that reads ``path`` (by suffix, else by content)."""
    path = Path(path)
    if path.is_dir():
        if (path / "model.json").is_file():
            return _REGISTRY[".json"]
        raise FrontendError(f"{path}: a folder without a model.json; give the model file")
    suffix = path.suffix.lower()
    if suffix in _REGISTRY:
        return _REGISTRY[suffix]
    if not path.exists():
        raise FrontendError(f"{path}: no such file")
    sniffed = _sniff(path)
    if sniffed is not None:
        return _REGISTRY[sniffed]
    known = ", ".join(f"{s} ({fe.format})" for s, fe in _REGISTRY.items())
    raise FrontendError(
        f"{path}: unknown model file type {suffix or '(no suffix)'!r}; known: {known}"
    )


def load_model(path: str | Path, **options: Any) -> Graph:
    """Read a model file into an IR graph with the reader its suffix (or content) selects.

    ``options`` are passed to the reader. Raises FrontendError for an unknown file type, a reader
    whose optional dependency is missing (naming the extra to install) or a bad model.
    """
    path = Path(path)
    fe = frontend_for(path)
    return fe.load_function()(path, **options)
