"""Lean version strings: parsing, ordering, and which REPL ref serves which Lean version.

Pure functions, no IO: the rules for picking a REPL revision are tested directly.

Ref naming, as the repositories' own tags and branches show: upstream leanprover-community/repl
tags each release exactly like the Lean version (``v4.19.0``, ``v4.22.0-rc2``; the tag's
``lean-toolchain`` names that version); some gaps are covered by unmerged ``bump_*`` branches
(``bump_to_v4.20.0``, ``bump_toolchain_to_v4.12.0-rc1``); LeanInteract's fork augustepoiroux/repl
tags ``v1.3.18_lean-toolchain-v4.22.0``. All three are understood, preferred in that order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "TOOLCHAIN_PREFIX",
    "LeanVersion",
    "newest_version",
    "normalize_lean_version",
    "parse_lean_version",
    "refs_by_lean_version",
    "sort_versions",
    "toolchain_name",
    "toolchain_version",
]

TOOLCHAIN_PREFIX = "leanprover/lean4:"

_VERSION = re.compile(r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)(?:-rc(?P<rc>\d+))?")
_FORK_TAG = re.compile(r"refs/tags/(?P<repl>v[\w.]+)_lean-toolchain-(?P<lean>v\S+)")
_EXACT_TAG = re.compile(r"refs/tags/(?P<lean>v\S+)")
_BUMP_BRANCH = re.compile(r"refs/heads/bump\w*?_to_(?P<lean>v\S+)")


@dataclass(frozen=True)
class LeanVersion:
    """A Lean release or release candidate, ordered as Lean orders them (rc1 < rc2 < release)."""

    major: int
    minor: int
    patch: int
    release_candidate: int | None = None

    @property
    def sort_key(self) -> tuple[int, int, int, int, int]:
        is_release = int(self.release_candidate is None)
        return (self.major, self.minor, self.patch, is_release, self.release_candidate or 0)

    @property
    def is_release_candidate(self) -> bool:
        return self.release_candidate is not None

    def __lt__(self, other: LeanVersion) -> bool:
        return self.sort_key < other.sort_key

    def __le__(self, other: LeanVersion) -> bool:
        return self.sort_key <= other.sort_key

    def __gt__(self, other: LeanVersion) -> bool:
        return self.sort_key > other.sort_key

    def __ge__(self, other: LeanVersion) -> bool:
        return self.sort_key >= other.sort_key

    def __str__(self) -> str:
        rc = f"-rc{self.release_candidate}" if self.release_candidate is not None else ""
        return f"v{self.major}.{self.minor}.{self.patch}{rc}"


def toolchain_version(toolchain: str) -> str:
    """``leanprover/lean4:v4.19.0`` (the contents of a ``lean-toolchain`` file) -> ``v4.19.0``."""
    text = toolchain.strip()
    return text.split(":", 1)[1].strip() if ":" in text else text


def toolchain_name(version_or_toolchain: str) -> str:
    """The full elan toolchain name: ``v4.19.0`` -> ``leanprover/lean4:v4.19.0``."""
    text = version_or_toolchain.strip()
    return text if ":" in text else TOOLCHAIN_PREFIX + text


def parse_lean_version(version: str) -> LeanVersion | None:
    """``v4.19.0``, ``v4.22.0-rc2`` or a full toolchain name -> `LeanVersion`; None if not one.

    LeanInteract returns a `packaging` version here; ours orders release candidates the way Lean
    numbers them and needs no extra dependency.
    """
    match = _VERSION.fullmatch(toolchain_version(version))
    if match is None:
        return None
    rc = match.group("rc")
    return LeanVersion(
        int(match.group("major")),
        int(match.group("minor")),
        int(match.group("patch")),
        int(rc) if rc is not None else None,
    )


def normalize_lean_version(version: str) -> str:
    """A user-given Lean version as the REPL tags name it; LeanInteract's checks and message."""
    text = toolchain_version(version)
    if not text.startswith("v4"):
        raise ValueError("Unable to parse Lean version format!")
    return text


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Oldest first; strings that are not Lean versions (nightlies, ...) go first, by name."""
    return sorted(set(versions), key=_version_key)


def newest_version(versions: Iterable[str]) -> str | None:
    """The newest release; release candidates count only when there is no release at all."""
    parsed = [(v, p) for v in versions if (p := parse_lean_version(v)) is not None]
    releases = [pair for pair in parsed if not pair[1].is_release_candidate] or parsed
    return max(releases, key=lambda pair: pair[1].sort_key)[0] if releases else None


def refs_by_lean_version(refnames: Iterable[str]) -> dict[str, str]:
    """Lean version -> the REPL ref that serves it, from ``git for-each-ref`` names.

    An exact tag wins over a fork tag (the highest REPL version among them), which wins over a
    ``bump_*`` branch. The ref's own ``lean-toolchain`` is still checked before use.
    """
    exact: dict[str, str] = {}
    fork: dict[str, tuple[tuple[int, ...], str]] = {}
    bump: dict[str, str] = {}
    for ref in refnames:
        ref = ref.strip()
        if m := _FORK_TAG.fullmatch(ref):
            lean = m.group("lean")
            rank = tuple(int(n) for n in re.findall(r"\d+", m.group("repl")))
            if parse_lean_version(lean) and (lean not in fork or rank > fork[lean][0]):
                fork[lean] = (rank, ref)
        elif m := _EXACT_TAG.fullmatch(ref):
            if parse_lean_version(m.group("lean")):
                exact[m.group("lean")] = ref
        elif (m := _BUMP_BRANCH.fullmatch(ref)) and parse_lean_version(m.group("lean")):
            bump.setdefault(m.group("lean"), ref)
    chosen = dict(bump)
    chosen.update({lean: ref for lean, (_, ref) in fork.items()})
    chosen.update(exact)
    return {version: chosen[version] for version in sort_versions(chosen)}


def _version_key(version: str) -> tuple[int, tuple[int, int, int, int, int], str]:
    parsed = parse_lean_version(version)
    return (1, parsed.sort_key, version) if parsed else (0, (0, 0, 0, 0, 0), version)
