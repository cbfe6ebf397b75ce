"""The documentation builds with `mkdocs build --strict`, and what it claims stays true."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _require_mkdocs() -> None:
    if (
        importlib.util.find_spec("mkdocs") is None
        or importlib.util.find_spec("mkdocstrings") is None
    ):
        pytest.skip("mkdocs / mkdocstrings not installed (pip install 'leanpool[docs]')")


def test_docs_build_strict(tmp_path: Path) -> None:
    _require_mkdocs()
    site = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    api_page = (site / "api" / "pool" / "index.html").read_text(encoding="utf-8")
    assert 'id="leanpool.LeanPool.submit"' in api_page  # docstrings were rendered
    assert (site / "benchmarks" / "index.html").is_file()


def test_python_snippets_are_valid_python() -> None:
    blocks = 0
    for page in sorted(DOCS.rglob("*.md")):
        for block in PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")):
            blocks += 1
            try:
                ast.parse(block)
            except SyntaxError as exc:
                pytest.fail(f"{page.relative_to(ROOT)}: snippet does not parse: {exc}\n{block}")
    assert blocks >= 10


def test_cli_reference_documents_every_option() -> None:
    from leanpool._cli import build_parser

    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    parser = build_parser()
    subcommands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    for name, subparser in subcommands.choices.items():
        assert f"## `leanpool {name}`" in reference
        for action in subparser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in reference or f"{option}`" in reference, (name, option)


def test_module_paths_named_in_the_migration_guide_exist() -> None:
    guide = (DOCS / "migrating.md").read_text(encoding="utf-8")
    modules = sorted(set(re.findall(r"`(leanpool\.[a-z_]+)[`.]", guide)))
    assert "leanpool.interface" in modules
    for module in modules:
        importlib.import_module(module)


def _package_modules() -> set[str]:
    """Every module of the package, dotted: a package's ``__init__.py`` stands for the package;
    ``__main__.py`` (it only calls the CLI) is left out."""
    found = set()
    for path in (ROOT / "leanpool").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_internals_module_map_names_every_module() -> None:
    """docs/internals.md's module map has one row per module, so it stays current as modules
    are added, renamed or removed."""
    page = (DOCS / "internals.md").read_text(encoding="utf-8")
    section = page.split("\n## Module map\n", 1)[1].split("\n## ", 1)[0]
    mapped = re.findall(r"^\| `(leanpool[\w.]*)` \|", section, re.MULTILINE)
    modules = _package_modules()
    assert {"leanpool", "leanpool._pool", "leanpool.protocol._wire", "leanpool._cli"} <= modules
    assert len(mapped) == len(set(mapped)), "a module has two rows"
    assert sorted(modules - set(mapped)) == [], "modules missing from docs/internals.md's map"
    assert sorted(set(mapped) - modules) == [], "docs/internals.md maps modules that do not exist"


def _load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "benchmarks_hook", DOCS / "hooks" / "benchmarks.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config(tmp_path: Path) -> Any:
    from mkdocs.config import load_config

    config = load_config(str(ROOT / "mkdocs.yml"))
    config["config_file_path"] = str(tmp_path / "mkdocs.yml")
    config["site_dir"] = str(tmp_path / "site")
    return config


def test_benchmarks_page_says_when_there_are_no_results(tmp_path: Path) -> None:
    _require_mkdocs()
    hook = _load_hook()
    page = "# Benchmarks\n\n" + hook.MARKER + "\n"
    shown = hook.on_page_markdown(page, None, _config(tmp_path), None)
    assert hook.MARKER not in shown
    assert "No benchmark results" in shown


def test_benchmarks_page_shows_the_report_and_its_plots(tmp_path: Path) -> None:
    _require_mkdocs()
    from mkdocs.structure.files import Files

    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    (results / "latest.md").write_text(
        "## Throughput\n\n![bars](throughput.png)\n[raw](latest.json) [site](https://x.org/a.png)\n"
    )
    (results / "throughput.png").write_bytes(b"\x89PNG")
    (results / "latest.json").write_text("{}")
    hook = _load_hook()
    config = _config(tmp_path)
    shown = hook.on_page_markdown(hook.MARKER, None, config, None)
    assert "![bars](bench-results/throughput.png)" in shown
    assert "[raw](bench-results/latest.json)" in shown
    assert "(https://x.org/a.png)" in shown  # absolute links untouched
    files = hook.on_files(Files([]), config)
    assert sorted(f.src_uri for f in files) == [
        "bench-results/latest.json",
        "bench-results/throughput.png",
    ]


# --- no pointers to files users never have -------------------------------------------------------

# Notes that exist only in the developers' workplace (beside the checkout, never shipped). Split
# into parts so that this file, which is scanned too, does not name them. A hyphenated stem is
# caught on its own ("<stem> 2.1"), a plain one only as a file name.
_WORKPLACE_DOCS = (
    ("pool", "engineering"), ("leaninteract", "api"), ("repl", "protocol"), ("landscape",),
    ("untrusted", "proofs"), ("kimina", "api"),
)  # fmt: skip
_NOT_SCANNED = {
    ".git", ".venv", ".nox", "build", "dist", "site", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis",
}  # fmt: skip


def _workplace_doc_pattern() -> re.Pattern[str]:
    stems = ["-".join(parts) for parts in _WORKPLACE_DOCS]
    names = [re.escape(s) + (r"\b" if "-" in s else r"\.md\b") for s in stems]
    return re.compile(r"\b(?:" + "|".join(names) + r")|shared[/]docs\b", re.IGNORECASE)


def _source_files() -> list[Path]:
    found = []
    runs = ROOT / "bench" / "results" / "runs"  # benchmark outputs, git-ignored
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if d not in _NOT_SCANNED and not d.endswith(".egg-info") and Path(folder, d) != runs
        ]
        found += [Path(folder, name) for name in files]
    return sorted(found)


def test_the_pattern_catches_every_workplace_doc() -> None:
    pattern = _workplace_doc_pattern()
    for parts in _WORKPLACE_DOCS:
        name = "-".join(parts)
        assert pattern.search(f"see {name}.md section 2"), name
    assert pattern.search("(" + "repl-" + "protocol 2.1)")
    assert pattern.search("../" + "shared/" + "docs/x.md")
    assert not pattern.search("the landscape of provers; REPL protocol; shared/repl-transcripts")


def test_no_source_names_a_workplace_doc() -> None:
    """Package, docs, bench, examples, tests and build files state facts and cite public
    sources; they never point at the workplace's notes (users do not have them)."""
    pattern = _workplace_doc_pattern()
    files = _source_files()
    scanned = {path.relative_to(ROOT).as_posix() for path in files}
    must = {
        "README.md", "CHANGELOG.md", "Makefile", "mkdocs.yml", "pyproject.toml", "noxfile.py",
        "leanpool/_process.py", "leanpool/testing/simrepl.py", "leanpool/_cli/_doctor.py",
        "docs/index.md", "docs/concepts/pool.md", "bench/README.md", "bench/systems.py",
        "examples/quickstart.py", "tests/transcripts.py", "tests/test_docs.py",
    }  # fmt: skip
    assert must <= scanned, sorted(must - scanned)
    assert sum(name.endswith(".py") for name in scanned) >= 100
    offenders = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # plots and other binary files
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
