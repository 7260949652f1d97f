"""Target profiles: one TOML file per chip profile, the only place hardware numbers live.

A profile names its family (``[profile] family``), which fixes the neuron datapath and which keys the
file must hold (``nmc/targets/families/<family>.py``); the file fixes the numbers. Every number
carries a source tag in ``[sources]`` under its dotted key. See ``docs/targets.md``.

>>> p = load_profile("loihi")
>>> p.get("core.neurons"), p.source("core.neurons")            # doctest: +SKIP
(1024, 'code: nengo-loihi ...')
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir.errors import TargetError
from nmc.targets.families import SOURCE_KINDS, Key, family_keys, family_module

PROFILE_DIR = Path(__file__).resolve().parent
"""Folder of the built-in profiles (``*.toml``)."""

_MISSING = object()


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (tables only; lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass(frozen=True)
class Profile:
    """A loaded and validated target profile.

    ``data`` is the parsed TOML (nested dicts) without ``[sources]``; ``sources`` maps dotted keys
    to source tags; ``sha256`` is the hash of the file's bytes (recorded in images and reports).
    """

    name: str
    family: str
    path: Path
    sha256: str
    data: dict = field(repr=False)
    sources: dict = field(repr=False)

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value under a dotted key (``"core.neurons"``); ``default`` or TargetError if absent."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not _MISSING:
                    return default
                raise TargetError(
                    f"profile {self.name} ({self.path}): no key {key!r}; the {self.family} family "
                    "does not define it"
                )
            node = node[part]
        return node

    def source(self, key: str) -> str:
        """The source tag of a dotted key (e.g. ``"code: Lava weightutils"``)."""
        try:
            return self.sources[key]
        except KeyError:
            raise TargetError(f"profile {self.name} ({self.path}): no source for key {key!r}") from None

    def has(self, key: str) -> bool:
        return self.get(key, None) is not None

    @property
    def description(self) -> str:
        return self.get("profile.description", "")

    @property
    def cores(self) -> int:
        """Cores per chip (mesh_x * mesh_y)."""
        return int(self.get("chip.mesh_x")) * int(self.get("chip.mesh_y"))

    def items(self) -> list[tuple[str, Any, str | None]]:
        """(dotted key, value, source or None) for every key, in file order."""
        return [(k, v, self.sources.get(k)) for k, v in flatten(self.data).items()]

    def to_text(self) -> str:
        """A readable listing: one ``key = value  # source`` line per key."""
        rows = [(k, f"{v!r}" if isinstance(v, str) else str(v).lower() if isinstance(v, bool)
                 else str(v), src) for k, v, src in self.items()]
        width = max((len(k) for k, _, _ in rows), default=0)
        vwidth = max((len(v) for _, v, s in rows if s), default=0)
        lines = [f"profile {self.name} (family {self.family})", f"file    {self.path}",
                 f"sha256  {self.sha256}"]
        if self.description:
            lines.append(f"about   {self.description}")
        lines.append("")
        for k, val, src in rows:
            lines.append(f"{k:<{width}} = {val:<{vwidth}}  [{src}]" if src else f"{k:<{width}} = {val}")
        return "\n".join(lines)


def builtin_paths() -> dict[str, Path]:
    """Built-in profile files by name (the file stem)."""
    return {p.stem: p for p in sorted(PROFILE_DIR.glob("*.toml"))}


def _resolve(name_or_path: str | Path) -> Path:
    s = str(name_or_path)
    builtin = builtin_paths()
    if isinstance(name_or_path, Path) or s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(s)
        if not p.is_file():
            raise TargetError(f"target profile file {s} does not exist")
        return p
    if s in builtin:
        return builtin[s]
    raise TargetError(
        f"unknown target {s!r}; built-in profiles: {', '.join(builtin)} "
        "(or pass the path of a .toml profile)"
    )


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """Load and validate a profile by built-in name (``"loihi"``) or by file path.

    Raises TargetError naming the key, the value and the broken rule: bad TOML, unknown family,
    missing key, undeclared key, wrong type, out of range, missing or malformed source tag.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    path = _resolve(name_or_path)
    raw = path.read_bytes()
    where = f"profile {path}: "
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise TargetError(f"{where}not valid TOML: {e}") from None
    sources = data.pop("sources", {})
    if not isinstance(sources, dict):
        raise TargetError(f"{where}[sources] must be a table of \"dotted.key\" = \"kind: where\"")
    prof = data.get("profile")
    if not isinstance(prof, dict):
        raise TargetError(f"{where}missing [profile] table with name and family")
    family = prof.get("family")
    if family is None:
        raise TargetError(f"{where}missing key profile.family (the chip family, e.g. \"loihi\")")
    mod = family_module(family, where)
    spec = family_keys(family)
    flat = flatten(data)
    problems = validate(flat, sources, spec)
    profile = Profile(
        name=str(prof.get("name", path.stem)), family=family, path=path,
        sha256=hashlib.sha256(raw).hexdigest(), data=data, sources=dict(sources),
    )
    if not problems and hasattr(mod, "check"):
        problems = list(mod.check(profile))
    if problems:
        head = where + (f"{len(problems)} problems:\n  - " if len(problems) > 1 else "")
        raise TargetError(head + "\n  - ".join(problems))
    return profile


def validate(flat: dict[str, Any], sources: dict[str, Any], spec: dict[str, Key]) -> list[str]:
    """All problems of a flattened profile against a key spec (empty when valid)."""
    problems: list[str] = []
    for key, k in spec.items():
        if k.required and key not in flat:
            problems.append(f"missing key {key}" + (f" ({k.doc})" if k.doc else ""))
    for key, value in flat.items():
        k = spec.get(key)
        if k is None:
            problems.append(
                f"unknown key {key} = {value!r}: the family does not declare it (a typo?)"
            )
            continue
        msg = k.check(key, value)
        if msg:
            problems.append(msg)
        if k.needs_source and key not in sources:
            problems.append(
                f"{key} = {value!r} has no source: add [sources] \"{key}\" = \"<kind>: <where>\" "
                f"(kind one of {', '.join(SOURCE_KINDS)})"
            )
    for key, tag in sources.items():
        if key not in flat:
            problems.append(f"[sources] names {key!r}, which is not a key of the profile")
        elif not isinstance(tag, str) or ":" not in tag or \
                tag.split(":", 1)[0].strip() not in SOURCE_KINDS or not tag.split(":", 1)[1].strip():
            problems.append(
                f"[sources] {key} = {tag!r} is not a source tag \"<kind>: <where>\" with kind one "
                f"of {', '.join(SOURCE_KINDS)}"
            )
    return problems


def list_profiles() -> list[Profile]:
    """Every built-in profile, loaded and validated, sorted by name.

    A built-in profile that fails validation raises (it is a bug in the package).
    """
    return [load_profile(p) for p in builtin_paths().values()]


__all__ = ["PROFILE_DIR", "Profile", "builtin_paths", "flatten", "list_profiles", "load_profile",
           "validate"]
