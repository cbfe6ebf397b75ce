"""The documentation builds with `mkdocs build --strict`, and what it claims stays true."""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
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
