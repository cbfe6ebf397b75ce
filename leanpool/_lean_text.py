"""LeanInteract's text helpers for Lean source (``lean_interact.utils``), re-exported by
`leanpool.utils`: scripts that clean theorem statements get the same strings.

Same names, parameters and results as LeanInteract 0.11.6, except where its result is plainly
wrong (each case is named in the function's docstring): a ``--`` comment on the last line ends at
the end of the text (LeanInteract kept its last character), a ``--`` inside a block comment
(``/--`` doc comments) is part of that block, keywords are whole words, and "last" means last
in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "clean_last_theorem_string",
    "clean_theorem_string",
    "compress_newlines",
    "extract_last_theorem",
    "indent_code",
    "lean_comments_ranges",
    "remove_lean_comments",
    "split_conclusion",
    "split_implementation",
]

_THEOREM_KEYWORD = re.compile(r"\b(?:theorem|lemma|example)\s")
_THEOREM_WORD = re.compile(r"\b(?:theorem|lemma|example)\b")
_OPENING = {"(": 0, "{": 1, "[": 2}
_CLOSING = {")": 0, "}": 1, "]": 2}


def indent_code(code: str, nb_spaces: int = 2) -> str:
    """Every line (blank ones too) indented by `nb_spaces` spaces."""
    pad = " " * nb_spaces
    return "\n".join(pad + line for line in code.split("\n"))


def compress_newlines(lean_code: str) -> str:
    """Whitespace-only lines emptied, at most one empty line in a row, no leading whitespace,
    and a single final newline when the text ended with one."""
    lines = ["" if line.isspace() else line for line in lean_code.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).lstrip()
    return text.rstrip() + "\n" if text.endswith("\n") else text


def lean_comments_ranges(
    lean_code: str, multiline_comment_suffix: str = "", remove_single_line_comments: bool = True
) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, end)`` character ranges of the comments in `lean_code`.

    Block comments are ``/-<suffix>`` ... ``<suffix>-/`` (the suffix is a regex, ``"-"`` for doc
    comments); nesting is handled by pairing openers and closers in order and merging. One
    unmatched opener runs to the end of the text, one unmatched closer starts at 0 (a snippet cut
    out of a file); more raise `ValueError`.
    """
    openers = [m.start() for m in re.finditer("/-" + multiline_comment_suffix, lean_code)]
    closers = [m.end() for m in re.finditer(multiline_comment_suffix + "-/", lean_code)]
    if len(openers) == len(closers) + 1:
        closers.append(len(lean_code))
    elif len(openers) + 1 == len(closers):
        openers.insert(0, 0)
    elif len(openers) != len(closers):
        raise ValueError("Mismatched open and close comment indices.")
    blocks = list(zip(openers, closers, strict=True))
    ranges = list(blocks)
    if remove_single_line_comments:
        for match in re.finditer("--", lean_code):
            start = match.start()
            if any(begin <= start < end for begin, end in blocks):
                continue  # ``/--`` or ``--`` inside a block comment: the block decides
            newline = lean_code.find("\n", start)
            ranges.append((start, newline if newline != -1 else len(lean_code)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def remove_lean_comments(lean_code: str) -> str | None:
    """`lean_code` without its comments; None when its block comments do not pair up."""
    try:
        ranges = lean_comments_ranges(lean_code)
    except ValueError:
        return None
    kept, position = [], 0
    for start, end in ranges:
        kept.append(lean_code[position:start])
        position = end
    kept.append(lean_code[position:])
    return "".join(kept)


def _top_level(text: str, start: int) -> Iterator[int]:
    """Indices from `start` on where no ``()``, ``{}`` or ``[]`` is open (each kind counted
    on its own, so a stray closer keeps everything after it nested)."""
    depth = [0, 0, 0]
    for index in range(start, len(text)):
        char = text[index]
        if char in _OPENING:
            depth[_OPENING[char]] += 1
        elif char in _CLOSING:
            depth[_CLOSING[char]] -= 1
        if depth == [0, 0, 0]:
            yield index


def split_implementation(declaration: str, start: int = 0) -> int | None:
    """Index of the ``:=`` that starts the declaration's body (its proof), outside brackets and
    not one of a ``let``/``haveI`` binding; None if there is none."""
    candidates = {m.start() for m in re.finditer(":=", declaration)}
    for keyword in ("let", "haveI"):
        candidates -= {m.start(1) for m in re.finditer(keyword + r"\s+\S*?\s*(:=)", declaration)}
    return next((i for i in _top_level(declaration, start) if i in candidates), None)


def split_conclusion(declaration: str, start: int = 0) -> int | None:
    """Index of the first ``:`` outside brackets (before the statement's type); None if none."""
    return next((i for i in _top_level(declaration, start) if declaration[i] == ":"), None)


def clean_theorem_string(
    theorem_string: str, new_theorem_name: str = "dummy", add_sorry: bool = True
) -> str | None:
    """``theorem <new_theorem_name> <binders and statement>`` (+ ``:= by sorry``), from a string
    holding one theorem, lemma or example: comments, anything before the keyword, the name and
    the proof removed. None when no declaration is found."""
    text = remove_lean_comments(theorem_string)
    if text is None:
        return None
    text = text.strip()
    found = _THEOREM_WORD.search(text)
    if found is None:
        return None
    text = text[found.start() :]
    body = split_implementation(text)
    if body is not None:
        text = text[:body].strip()
    is_example = text.startswith("example")
    text = re.sub(r"^\S+", "", text).strip()  # the keyword
    if not is_example:
        text = re.sub(r"^[^\s:({\[]+", "", text).strip()  # the name
    cleaned = f"theorem {new_theorem_name} " + text
    return cleaned + " := by sorry" if add_sorry else cleaned


def extract_last_theorem(lean_code: str) -> int:
    """Index of the last ``theorem``/``lemma``/``example`` keyword outside comments.

    LeanInteract returned the last of the last keyword kind found (an ``example`` before a
    ``theorem`` won) and counted a keyword right after ``-/`` as commented out; here it is the
    last one in the text. Raises `ValueError` when there is none.
    """
    comments = lean_comments_ranges(lean_code)
    found = [
        m.start()
        for m in _THEOREM_KEYWORD.finditer(lean_code)
        if not any(start <= m.start() < end for start, end in comments)
    ]
    if not found:
        raise ValueError(f"No theorem found in the provided Lean code:\n{lean_code}")
    return found[-1]


def clean_last_theorem_string(
    lean_code: str, new_theorem_name: str = "dummy", add_sorry: bool = False
) -> str:
    """`lean_code` with its last theorem cleaned by `clean_theorem_string` (what precedes it is
    kept as is). Raises `ValueError` when that fails."""
    index = extract_last_theorem(lean_code)
    cleaned = clean_theorem_string(lean_code[index:], new_theorem_name, add_sorry=add_sorry)
    if cleaned is None:
        raise ValueError(f"Theorem extraction failed for the following Lean code:\n{lean_code}")
    return lean_code[:index] + cleaned


# A character literal: 'a', '\n', '\x41', '\u03b1' (Lean's `charLitFn`, src/Lean/Parser/Basic.lean).
_CHAR_LITERAL = re.compile(r"'(?:\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)|[^\\'\n])'")


def code_only(code: str) -> str:
    """`code` with comments (``--``, nested ``/- -/``), string literals (with escapes, raw
    ``r"..."``/``r#"..."#``) and character literals blanked out, same length, newlines kept."""
    out: list[str] = []
    index, length = 0, len(code)

    def blank(end: int) -> None:
        nonlocal index
        out.append("".join("\n" if c == "\n" else " " for c in code[index:end]))
        index = end

    while index < length:
        char = code[index]
        if code.startswith("--", index):
            end = code.find("\n", index)
            blank(length if end == -1 else end)
        elif code.startswith("/-", index):
            depth, end = 1, index + 2
            while end < length and depth:
                if code.startswith("/-", end):
                    depth, end = depth + 1, end + 2
                elif code.startswith("-/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
            blank(end)
        elif char == '"':
            end = index + 1
            while end < length and code[end] != '"':
                end += 2 if code[end] == "\\" else 1
            blank(min(end + 1, length))
        elif (
            char == "r" and (raw := re.match(r'r(#*)"', code[index:])) and not _in_word(code, index)
        ):
            closing = '"' + raw.group(1)
            end = code.find(closing, index + raw.end())
            blank(length if end == -1 else end + len(closing))
        elif char == "'" and not _in_word(code, index):
            literal = _CHAR_LITERAL.match(code, index)
            if literal is not None:
                blank(literal.end())
            else:
                out.append(char)
                index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _in_word(code: str, index: int) -> bool:
    """The character before `index` continues an identifier (`h'`, `xr"`...)."""
    return index > 0 and (code[index - 1].isalnum() or code[index - 1] in "_'!?.")
