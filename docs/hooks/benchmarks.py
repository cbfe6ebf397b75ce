"""mkdocs hook: put the latest benchmark report (bench/results/latest.md) on the benchmarks page.

The report and its plots live in bench/results/, outside the docs, and may not exist yet (the
benchmark suite writes them). A hook, rather than a snippet include, so the page can say plainly
when there are no results and the plots are copied into the site with working links.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

MARKER = "<!-- latest-benchmark-report -->"
SITE_FOLDER = "bench-results"
_PLACEHOLDER = (
    '!!! note "No benchmark results in this checkout yet"\n'
    "    Run `make bench` to produce `bench/results/latest.md` and its plots; this page shows "
    "them on the next `make docs`.\n"
)
_RELATIVE_LINK = re.compile(r"(!?\[[^\]]*\]\()(?![a-z]+://|/|#)([^)\s]+)(\))")


def _results_dir(config: Any) -> Path:
    return Path(config["config_file_path"]).parent / "bench" / "results"


def on_files(files: Files, config: Any) -> Files:
    results = _results_dir(config)
    if results.is_dir():
        for path in sorted(results.iterdir()):
            if path.is_file() and path.suffix.lower() in {".png", ".svg", ".jpg", ".json"}:
                site_file = File(
                    f"{SITE_FOLDER}/{path.name}",
                    src_dir=None,
                    dest_dir=config["site_dir"],
                    use_directory_urls=config["use_directory_urls"],
                )
                site_file.abs_src_path = str(path)  # copied from outside docs_dir
                files.append(site_file)
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if MARKER not in markdown:
        return markdown
    report = _results_dir(config) / "latest.md"
    if not report.is_file():
        return markdown.replace(MARKER, _PLACEHOLDER)
    text = report.read_text(encoding="utf-8")
    text = _RELATIVE_LINK.sub(lambda m: f"{m.group(1)}{SITE_FOLDER}/{m.group(2)}{m.group(3)}", text)
    return markdown.replace(MARKER, text)
