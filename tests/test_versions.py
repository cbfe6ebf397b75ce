"""Lean version parsing, ordering, and which REPL ref serves which version."""

from __future__ import annotations

import random

import pytest

from leanpool._versions import (
    LeanVersion,
    newest_version,
    normalize_lean_version,
    parse_lean_version,
    refs_by_lean_version,
    sort_versions,
    toolchain_name,
    toolchain_version,
)


def test_parse_release_and_release_candidate() -> None:
    assert parse_lean_version("v4.19.0") == LeanVersion(4, 19, 0)
    assert parse_lean_version("leanprover/lean4:v4.22.0-rc2") == LeanVersion(4, 22, 0, 2)
    assert str(parse_lean_version("v4.22.0-rc2")) == "v4.22.0-rc2"


@pytest.mark.parametrize("text", ["4.19.0", "v4.19", "nightly-2024-05-01", "v4.19.0-beta", ""])
def test_parse_rejects_what_is_not_a_lean_release(text: str) -> None:
    assert parse_lean_version(text) is None


def test_release_candidates_sort_before_their_release() -> None:
    ordered = ["v4.9.0", "v4.10.0-rc1", "v4.10.0-rc2", "v4.10.0", "v4.10.1", "v4.11.0-rc1"]
    shuffled = ordered[:]
    random.Random(4).shuffle(shuffled)
    assert sort_versions(shuffled) == ordered
    assert LeanVersion(4, 10, 0, 2) < LeanVersion(4, 10, 0) < LeanVersion(4, 10, 1)


def test_newest_version_prefers_releases() -> None:
    assert newest_version(["v4.18.0", "v4.19.0", "v4.20.0-rc1"]) == "v4.19.0"
    assert newest_version(["v4.20.0-rc1", "v4.20.0-rc3"]) == "v4.20.0-rc3"
    assert newest_version(["nightly"]) is None


def test_normalize_strips_the_toolchain_prefix_and_refuses_non_v4() -> None:
    assert normalize_lean_version("leanprover/lean4:v4.19.0") == "v4.19.0"
    with pytest.raises(ValueError, match="Unable to parse Lean version format"):
        normalize_lean_version("4.19.0")


def test_toolchain_names_round_trip() -> None:
    assert toolchain_name("v4.19.0") == "leanprover/lean4:v4.19.0"
    assert toolchain_name("leanprover/lean4:v4.19.0") == "leanprover/lean4:v4.19.0"
    assert toolchain_version("leanprover/lean4:v4.19.0\n") == "v4.19.0"


def test_refs_prefer_exact_tags_then_fork_tags_then_bump_branches() -> None:
    refs = [
        "refs/tags/v4.19.0",
        "refs/heads/bump_to_v4.19.0",
        "refs/heads/bump_to_v4.20.0",
        "refs/heads/bump_toolchain_to_v4.12.0-rc1",
        "refs/tags/v1.3.14_lean-toolchain-v4.20.0",
        "refs/tags/v1.3.18_lean-toolchain-v4.20.0",
        "refs/tags/v1.3.9_lean-toolchain-v4.20.0",
        "refs/heads/master",
        "refs/tags/not-a-version",
    ]
    assert refs_by_lean_version(refs) == {
        "v4.12.0-rc1": "refs/heads/bump_toolchain_to_v4.12.0-rc1",
        "v4.19.0": "refs/tags/v4.19.0",
        "v4.20.0": "refs/tags/v1.3.18_lean-toolchain-v4.20.0",
    }
