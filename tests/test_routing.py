"""Header splitting, position shifting and deduplication keys (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from leanpool._routing import dedup_key, header_split_for, shift_positions, split_header
from leanpool.protocol import Command, FileCommand


def test_split_plain_header() -> None:
    split = split_header("import Mathlib\nimport Aesop\n\ntheorem t : True := trivial")
    assert split is not None
    assert split.key == ("Mathlib", "Aesop")
    assert split.header == "import Mathlib\nimport Aesop"
    assert split.body == "theorem t : True := trivial"
    assert split.line_offset == 3


def test_comments_and_blank_lines_belong_to_the_header() -> None:
    text = (
        "-- intro\n/- block\ncomment -/\nimport A import B\n\n  -- more\n"
        "example : True := trivial\n"
    )
    split = split_header(text)
    assert split is not None
    assert split.key == ("A", "B")
    assert split.line_offset == 6
    assert split.body.startswith("example")


def test_same_modules_same_key_despite_formatting() -> None:
    a = split_header("import A\nimport B\ndef x := 1")
    b = split_header("-- hi\nimport A import\n  B -- two imports, one line\n\ndef y := 2")
    assert a is not None and b is not None and a.key == b.key


@pytest.mark.parametrize(
    "text",
    [
        "def x := 1",  # no header
        "import Mathlib\n",  # nothing but the header
        "/-! module doc -/\nimport A\ndef x := 1",  # doc comment first: a command in Lean
        "import A theorem x : True := trivial",  # the body shares the header's line
        "import A B\ndef x := 1",  # one module per `import`: `B` is a (broken) command
        "/- unterminated\nimport A\ndef x := 1",
        "import A\n/- unterminated\ndef x := 1",
        "import A /- comment\n-/ def x := 1",  # the body starts inside the header's comment's line
        "import A\timport B\ndef x := 1",  # tabs are a parse error in Lean
        "import A\rimport B\ndef x := 1",  # and so are lone carriage returns
        "import Mathlib.\ndef x := 1",  # trailing dot: a partial name
        "import Mathlib.Tactic.αβ\ndef x := 1",  # non-ASCII letters: version-dependent
        "import all.Foo\ndef x := 1",
        "import «Foo\ndef x := 1",  # unterminated escape
        "import «»\ndef x := 1",
        "import «Foo»Bar\ndef x := 1",
        "import runtime Foo\ndef x := 1",  # old Lean's `runtime` modifier
        "import at\ndef x := 1",  # a keyword, not a module
        "import Type\ndef x := 1",
        "module\ndef x := 1",  # no imports
        "prelude\ndef x := 1",
        "import\ndef x := 1",
    ],
)
def test_no_split(text: str) -> None:
    assert split_header(text) is None


# Canonical keys: equal exactly when Lean would import the same environment.


def _key(text: str) -> tuple[str, ...]:
    split = split_header(text + "\ntheorem t : True := trivial")
    assert split is not None, text
    return split.key


def test_a_submodule_is_never_its_library() -> None:
    # The Kimina server collapses `import Mathlib.X` into `import Mathlib`; checking a proof
    # against all of Mathlib when it asked for one file can make it pass where it fails.
    assert _key("import Mathlib.Tactic") == ("Mathlib.Tactic",)
    assert _key("import Mathlib") == ("Mathlib",)
    assert _key("import Mathlib.Tactic") != _key("import Mathlib")
    assert _key("import Mathlib.Data.Real.Basic") != _key("import Mathlib.Data.Real")
    assert _key("import Mathlib\nimport Mathlib.Tactic") != _key("import Mathlib")


def test_module_system_words_are_part_of_the_key() -> None:
    assert _key("module\nimport A") == ("module", "A")
    assert _key("prelude\nimport A") == ("prelude", "A")
    assert _key("module\nprelude\nimport A") == ("module", "prelude", "A")
    assert _key("public import A") == ("public A",)
    assert _key("meta import A") == ("meta A",)
    assert _key("public meta import A") == ("public meta A",)
    assert _key("import all A") == ("all A",)
    assert _key("public meta import all A") == ("public meta all A",)
    keys = [
        _key(text)
        for text in (
            "import A",
            "module\nimport A",
            "prelude\nimport A",
            "public import A",
            "meta import A",
            "import all A",
            "import A\nimport all A",
        )
    ]
    assert len(set(keys)) == len(keys)


def test_public_or_meta_without_import_starts_the_body() -> None:
    split = split_header("module\nimport A\npublic section\ndef x := 1")
    assert split is not None
    assert split.key == ("module", "A")
    assert (split.body, split.line_offset) == ("public section\ndef x := 1", 2)
    split = split_header("import A\nmeta def x := 1")
    assert split is not None and split.body == "meta def x := 1"


def test_order_is_kept_and_repeats_are_dropped() -> None:
    assert _key("import A\nimport B") != _key("import B\nimport A")
    assert _key("import A\nimport B\nimport A") == ("A", "B")
    assert _key("import A\nimport A\nimport B") == _key("import A\nimport B")
    assert _key("import A\npublic import A") == ("A", "public A")  # not a repeat


def test_guillemets_name_the_same_module_only_when_they_spell_the_same_name() -> None:
    assert _key("import «Foo».Bar") == _key("import Foo.Bar") == _key("import Foo.«Bar»")
    assert _key("import «Foo.Bar»") == ("«Foo.Bar»",)  # one component with a dot in it
    assert _key("import «Foo.Bar»") != _key("import Foo.Bar")
    assert _key("import «My Module».Foo") == ("«My Module».Foo",)
    assert _key("import «public»") == ("«public»",)  # a module, not a modifier
    assert _key("import «at»") == ("at",)  # unquoted, `at` is a keyword (no key at all)


def test_comments_nest_and_doc_comments_end_the_header() -> None:
    text = "/- outer /- inner -/ import X -/\nimport A -- import Y\n/-! doc -/\nimport B"
    split = split_header(text)
    assert split is not None
    assert split.key == ("A",)
    assert (split.body, split.line_offset) == ("/-! doc -/\nimport B", 2)
    assert split_header("/- outer /- inner -/ import X\nimport A\ndef x := 1") is None


def test_crlf_lines_are_whitespace() -> None:
    split = split_header("import A\r\nimport B\r\n\r\ntheorem t : True := trivial\r\n")
    assert split is not None
    assert split.key == ("A", "B")
    assert (split.body, split.line_offset) == ("theorem t : True := trivial\r\n", 3)


def test_the_body_keeps_its_first_line_whole() -> None:
    split = split_header("import A /- a\ncomment -/\n  /- same line -/ theorem t : True := trivial")
    assert split is not None
    assert split.header == "import A /- a\ncomment -/"
    assert split.body == "  /- same line -/ theorem t : True := trivial"
    assert split.line_offset == 2


# Property tests: headers from a small grammar, rendered many ways.

# Name components: those a header may spell plainly or «quoted», and those it must quote.
PLAIN = ["Mathlib", "Tactic", "Data", "Aesop", "Foo'", "B2"]
QUOTED = ["My Module", "x.y", "at", "Type", "public", "all"]
TRIVIA = [
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    " -- note\n",
    "-- import Fake /- not a block\n",
    "/- c -/",
    " /- a /- nested import Fake -/ b -/ ",
    "/- -- not a line comment -/",
    "/-\n-/",
]
BODIES = [
    "theorem t : True := trivial",
    "def x := 1\n",
    "public section\nexample : True := trivial",
    "/-- doc -/\ntheorem t : True := trivial",
    "/-! module doc -/\n#eval 1",
    "example : 1 = 1 := rfl -- import B",
    "importantLemma",
]

Import = tuple[bool, bool, bool, tuple[str, ...]]  # public, meta, all, name components


@dataclass(frozen=True)
class Header:
    module: bool
    prelude: bool
    imports: tuple[Import, ...]

    def meaning(self) -> tuple[bool, bool, tuple[Import, ...]]:
        """What Lean imports: repeats of an identical import do nothing."""
        return self.module, self.prelude, tuple(dict.fromkeys(self.imports))


names = st.lists(st.sampled_from(PLAIN + QUOTED), min_size=1, max_size=3).map(tuple)
imports = st.tuples(st.booleans(), st.booleans(), st.booleans(), names)
headers = st.builds(
    Header, st.booleans(), st.booleans(), st.lists(imports, min_size=1, max_size=4).map(tuple)
)
trivia = st.lists(st.sampled_from(TRIVIA), min_size=1, max_size=3).map("".join)


@st.composite
def renderings(draw: st.DrawFn, header: Header) -> str:
    """Header text meaning `header`: any trivia, any quoting, repeats added anywhere later."""
    listed = list(header.imports)
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, len(listed) - 1))
        listed.insert(draw(st.integers(index + 1, len(listed))), listed[index])
    parts = [draw(st.sampled_from(["", *TRIVIA]))]
    tokens: list[str] = []
    if header.module:
        tokens.append("module")
    if header.prelude:
        tokens.append("prelude")
    for public, meta, all_, name in listed:
        tokens += ["public"] * public + ["meta"] * meta + ["import"] + ["all"] * all_
        quoted = [c not in PLAIN or draw(st.booleans()) for c in name]
        tokens.append(".".join(f"«{c}»" if q else c for c, q in zip(name, quoted, strict=True)))
    for index, token in enumerate(tokens):
        if index:
            parts.append(draw(trivia))
        parts.append(token)
    return "".join(parts)


@st.composite
def commands(draw: st.DrawFn, header: Header) -> tuple[str, str, int]:
    """(command, its body, lines before the body) for a rendering of `header`."""
    text = draw(renderings(header)) + draw(st.sampled_from(["", *TRIVIA])) + "\n"
    text += draw(st.sampled_from(["", "\n", "  -- more\n", "/- a\nb -/\n", "\r\n"]))
    lines = text.count("\n")
    body = draw(st.sampled_from(["", "  ", "/- same line -/ "])) + draw(st.sampled_from(BODIES))
    return text + body, body, lines


@given(st.data(), headers)
def test_renderings_of_one_header_share_its_key(data: st.DataObject, header: Header) -> None:
    first, body, lines = data.draw(commands(header))
    second, _, _ = data.draw(commands(header))
    a, b = split_header(first), split_header(second)
    assert a is not None and b is not None, (first, second)
    assert a.key == b.key
    assert (a.body, a.line_offset) == (body, lines)  # the body and its place are the caller's
    assert first == a.header + first[len(a.header) : len(first) - len(body)] + body
    assert first[len(a.header) : len(first) - len(body)].strip() == ""


@given(st.data(), headers, headers)
def test_headers_share_a_key_only_when_they_mean_the_same(
    data: st.DataObject, one: Header, other: Header
) -> None:
    a = split_header(data.draw(commands(one))[0])
    b = split_header(data.draw(commands(other))[0])
    assert a is not None and b is not None
    assert (a.key == b.key) == (one.meaning() == other.meaning())


def _changed(header: Header, how: int, index: int, name: tuple[str, ...]) -> Header:
    """`header` changed in one way that changes what Lean imports (or the same, rarely)."""
    listed = list(dict.fromkeys(header.imports))
    index %= len(listed)
    public, meta, all_, old = listed[index]
    if how == 0:
        return replace(header, module=not header.module)
    if how == 1:
        return replace(header, prelude=not header.prelude)
    if how <= 4:
        flags = [public, meta, all_]
        flags[how - 2] = not flags[how - 2]
        listed[index] = (flags[0], flags[1], flags[2], old)
    elif how == 5:
        listed[index] = (public, meta, all_, old[:-1] or ("Mathlib",))  # Mathlib.X -> Mathlib
    elif how == 6:
        listed[index] = (public, meta, all_, name)
    elif how == 7:
        listed.insert(index, (public, meta, all_, name))
    elif how == 8 and len(listed) > 1:
        del listed[index]
    else:
        listed.reverse()  # order matters
    return replace(header, imports=tuple(listed))


@given(st.data(), headers, st.integers(0, 9), st.integers(0, 3), names)
def test_one_change_to_a_header_changes_its_key(
    data: st.DataObject, header: Header, how: int, index: int, name: tuple[str, ...]
) -> None:
    changed = _changed(header, how, index, name)
    assume(changed.meaning() != header.meaning())
    a = split_header(data.draw(commands(header))[0])
    b = split_header(data.draw(commands(changed))[0])
    assert a is not None and b is not None
    assert a.key != b.key


@given(st.data(), headers, st.sampled_from(["\t", "\r ", " B", ".", " /- open", "α"]))
def test_a_broken_header_gets_no_key(data: st.DataObject, header: Header, junk: str) -> None:
    text = data.draw(renderings(header)) + junk + "\ntheorem t : True := trivial"
    assert split_header(text) is None


FRAGMENTS = [
    "import", "public", "meta", "all", "module", "prelude", " ", "\n", "\t", "\r", "A", "Mathlib",
    ".", "«", "»", "«My Module»", "/-", "-/", "--", "/--", "/-!", "theorem", "x", "α", "B.C",
]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join))
def test_any_split_rebuilds_the_command(text: str) -> None:
    split = split_header(text)
    if split is None:
        return
    assert split.key and split.body.strip()
    assert text.endswith(split.body)
    prefix = text[: len(text) - len(split.body)]
    assert prefix.endswith("\n") and prefix.count("\n") == split.line_offset
    assert prefix.startswith(split.header) and prefix[len(split.header) :].strip() == ""


def test_only_envless_commands_are_split() -> None:
    assert header_split_for(Command(cmd="import A\ndef x := 1")) is not None
    assert header_split_for(Command(cmd="import A\ndef x := 1", env=3)) is None
    assert header_split_for(FileCommand(path="x.lean")) is None


def test_shift_positions_everywhere_but_line_zero() -> None:
    response = {
        "messages": [
            {"severity": "error", "pos": {"line": 1, "column": 2}, "endPos": None, "data": "x"},
            {
                "severity": "info",
                "pos": {"line": 0, "column": 0},
                "endPos": {"line": 0, "column": 0},
                "data": "tactic mode",
            },
        ],
        "sorries": [
            {
                "proofState": 0,
                "pos": {"line": 2, "column": 0},
                "endPos": {"line": 2, "column": 5},
                "goal": "⊢ True",
            }
        ],
        "tactics": [
            {
                "tactic": "rfl",
                "proofState": 1,
                "pos": {"line": 3, "column": 0},
                "endPos": {"line": 3, "column": 3},
                "goals": "⊢ True",
                "usedConstants": [],
            }
        ],
        "infotree": [
            {
                "kind": "TacticInfo",
                "node": {
                    "stx": {
                        "range": {
                            "synthetic": False,
                            "start": {"line": 1, "column": 0},
                            "finish": {"line": 1, "column": 4},
                        }
                    }
                },
                "children": [],
            }
        ],
        "env": 0,
    }
    shifted = shift_positions(response, 4)
    assert shifted["messages"][0]["pos"] == {"line": 5, "column": 2}
    assert shifted["messages"][0]["endPos"] is None
    assert shifted["messages"][1]["pos"] == {"line": 0, "column": 0}
    assert shifted["sorries"][0]["pos"]["line"] == 6
    assert shifted["tactics"][0]["endPos"]["line"] == 7
    rng = shifted["infotree"][0]["node"]["stx"]["range"]
    assert (rng["start"]["line"], rng["finish"]["line"]) == (5, 5)
    assert response["messages"][0]["pos"]["line"] == 1  # the original is untouched


def test_positions_move_in_info_trees_of_any_depth() -> None:
    depth = 50_000  # Lean writes info trees of any depth; a recursive copy stops near 1,000
    stx = {"range": {"synthetic": False, "start": {"line": 2, "column": 0}, "finish": None}}
    tree: dict[str, Any] = {"kind": "TermInfo", "node": {"stx": stx}, "children": []}
    for _ in range(depth - 1):
        tree = {"kind": "TermInfo", "node": {"stx": stx}, "children": [{"goalState": "g"}, tree]}
    shifted = shift_positions({"infotree": [tree], "env": 0}, 3)["infotree"][0]
    for level in range(depth):
        assert shifted["node"]["stx"]["range"]["start"] == {"line": 5, "column": 0}
        assert shifted["node"]["stx"]["range"]["finish"] is None
        if level < depth - 1:
            assert shifted["children"][0] == {"goalState": "g"}
            shifted = shifted["children"][1]
    assert shifted["children"] == []
    assert stx["range"]["start"] == {"line": 2, "column": 0}  # the original is untouched


def test_dedup_key_ignores_key_order_but_not_content_or_timeout() -> None:
    a = dedup_key(Command(cmd="#eval 1", all_tactics=True), 5.0)
    b = dedup_key(Command(all_tactics=True, cmd="#eval 1"), 5.0)
    assert a == b
    assert a != dedup_key(Command(cmd="#eval 2", all_tactics=True), 5.0)
    assert a != dedup_key(Command(cmd="#eval 1", all_tactics=True), 6.0)


def _finish_comment_block(text: str, pos: int) -> int | None:
    """Lean's `finishCommentBlock` (src/Lean/Parser/Basic.lean), one character at a time."""
    nesting = 1
    while pos < len(text):
        char, pos = text[pos], pos + 1
        if char == "-" and text[pos : pos + 1] == "/":
            pos += 1
            nesting -= 1
            if nesting == 0:
                return pos
        elif char == "/" and text[pos : pos + 1] == "-":
            pos += 1
            nesting += 1
    return None


@given(st.text(alphabet="/-a\n", max_size=30))
def test_comments_end_where_lean_ends_them(text: str) -> None:
    from leanpool._routing import _comment_end, _Unsure

    expected = _finish_comment_block(text, 0)
    try:
        assert _comment_end(text, 0) == expected
    except _Unsure:
        assert expected is None
