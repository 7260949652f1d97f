"""The backend: writes chip images (``.nmb``) from routed graphs.

The layout is ``emulator/format.py`` (the hardware contract shared with the emulator's loader);
:mod:`nmc.backend.writer` fills it. See ``docs/image-format.md``.
"""

from __future__ import annotations


def write_image(graph, profile) -> bytes:
    """The chip image of a routed graph (see :func:`nmc.backend.writer.write_image`)."""
    from nmc.backend.writer import write_image as _write

    return _write(graph, profile)


def save_image(graph, profile, path):
    """Write the image of a routed graph atomically (see :func:`nmc.backend.writer.save_image`)."""
    from nmc.backend.writer import save_image as _save

    return _save(graph, profile, path)


__all__ = ["save_image", "write_image"]
