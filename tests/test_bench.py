"""Smoke test of the benchmark suite (bench/): it runs end to end in its tiny mode and writes a
latest.json of the documented shape. Structure only: speed is never asserted here (the numbers
of a smoke run mean nothing, and machines are noisy)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RATIO_KEYS = {
    "throughput_trivial_1w_vs_raw",
    "throughput_trivial_1w_sequential_vs_raw",
    "scaling_efficiency_2w",
    "ray_vs_loky_throughput",
    "speedup_vs_seed_recipe",
    "affinity_vs_blind",
    "faults_throughput_retained",
    "speedup_vs_leaninteract_pool_nofaults",
    "useful_results_per_s_vs_leaninteract",
    "rl_floor_vs_leanpool",
    "json_parse_shallow_vs_json_loads",
    "verdict_policy_throughput_vs_plain",
    "speedup_vs_kimina_server",
    "lost_results",
}
SCENARIOS = {
    "s1_overhead",
    "s2_scaling",
    "s3_imports",
    "s4_faults",
    "s5_memory",
    "s6_streaming",
    "s7_rl",
    "s8_json",
    "s9_verdicts",
    "s10_serve",
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--mode", "smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out, json.loads((out / "latest.json").read_text(encoding="utf-8"))


def test_every_scenario_ran_and_no_result_was_lost(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _out, report = smoke_run
    assert report["mode"] == "smoke"
    assert set(report["scenarios"]) == SCENARIOS
    for name, scenario in report["scenarios"].items():
        assert "error" not in scenario, f"{name}: {scenario.get('error')}"
        assert scenario["variants"], name
        for variant in scenario["variants"]:
            assert variant["results"] == variant["requests"], (name, variant["name"])
            assert variant["lost"] == 0, (name, variant["name"])
            assert sum(variant["outcomes"].values()) == variant["results"], (name, variant)
    assert report["lost_results"]["total"] == 0
    assert report["ratios"]["lost_results"] == 0


def _met(rule: str, value: float | None) -> bool | None:
    """A target's verdict, from its rule as the report states it (">= 0.95", "== 0")."""
    if value is None:
        return None
    operator, threshold = rule.split()
    return value >= float(threshold) if operator == ">=" else value == float(threshold)


def test_ratios_and_targets_have_the_documented_keys(
    smoke_run: tuple[Path, dict[str, Any]],
) -> None:
    _out, report = smoke_run
    assert set(report["ratios"]) >= RATIO_KEYS
    assert set(report["targets"]) == RATIO_KEYS
    for key, target in report["targets"].items():
        assert target["value"] == report["ratios"][key]
        assert target["met"] is _met(target["target"], target["value"]), (key, target)
    assert report["targets"]["lost_results"]["met"] is True  # nothing was lost (above)
    leanpool_only = {
        "throughput_trivial_1w_vs_raw",
        "throughput_trivial_1w_sequential_vs_raw",
        "scaling_efficiency_2w",
        "affinity_vs_blind",
        "rl_floor_vs_leanpool",
    }
    for key in leanpool_only | {"faults_throughput_retained", "json_parse_shallow_vs_json_loads"}:
        assert isinstance(report["ratios"][key], float) and report["ratios"][key] > 0, key
    assert "speedup_vs_leaninteract_pool" not in report["ratios"]  # retired (issue 14)
    s2 = report["scenarios"]["s2_scaling"]
    if s2["ray_skipped"] is None:  # Ray installed: it ran, and loky beside it
        ray_ratio = report["ratios"]["ray_vs_loky_throughput"]
        assert isinstance(ray_ratio, float) and ray_ratio > 0
        assert {"leanpool_LeanPool_2w_ray", "leanpool_LeanPool_2w_loky_ray_running"} <= {
            v["name"] for v in s2["variants"]
        }
    else:
        assert report["ratios"]["ray_vs_loky_throughput"] is None
    machine = report["machine"]
    assert machine["cores"] and machine["python"] and "leanpool" in machine["packages"]


def test_rl_scenario_runs_the_plan_without_faults_too(
    smoke_run: tuple[Path, dict[str, Any]],
) -> None:
    _out, report = smoke_run
    s7 = report["scenarios"]["s7_rl"]
    names = {v["name"]: v for v in s7["variants"]}
    nofaults = f"{s7['rl_configuration']}_nofaults"
    assert {"leanpool", s7["rl_configuration"], nofaults} <= set(names)
    assert names[nofaults]["faults"] is False and names[s7["rl_configuration"]]["faults"] is True
    assert names[nofaults]["requests"] == s7["plan_nofaults"]["requests"]
    assert s7["plan_nofaults"]["planned_crashes"] == s7["plan_nofaults"]["planned_hangs"] == 0
    latency = s7["latency"][s7["rl_configuration"]]
    for plan in ("faults", "nofaults"):
        assert set(latency[plan]) == {"p50", "p90", "p99"}
        assert all(isinstance(value, float) for value in latency[plan].values()), latency
    if "leaninteract" in names:  # with LeanInteract installed, it ran both plans
        assert names["leaninteract_nofaults"]["faults"] is False
        assert isinstance(report["ratios"]["speedup_vs_leaninteract_pool_nofaults"], float)


def test_report_files_and_dated_copy(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    out, report = smoke_run
    text = (out / "latest.md").read_text(encoding="utf-8")
    for key in RATIO_KEYS:
        assert f"`{key}`" in text
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / image).is_file(), image
    copies = list((out / "runs").iterdir())
    assert len(copies) == 1 and (copies[0] / "latest.json").is_file()
    assert json.loads((copies[0] / "latest.json").read_text(encoding="utf-8")) == report


def test_readme_documents_every_key(smoke_run: tuple[Path, dict[str, Any]]) -> None:
    _out, report = smoke_run
    readme = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    keys = set(report) | set(report["ratios"]) | set(report["extra_ratios"])
    undocumented = sorted(key for key in keys if f"`{key}`" not in readme)
    assert not undocumented, f"bench/README.md does not document: {undocumented}"


MEMORY = ("rss", "pss", "private")


def _memory_is_consistent(values: dict[str, Any], total: str, repl: str) -> None:
    """Every measure is there and a number; PSS and private memory are at most RSS; the largest
    REPL's are at most the totals."""
    for who in (total, repl):
        for kind in MEMORY:
            key = who.format(kind)
            assert isinstance(values[key], (int, float)) and values[key] >= 0, (key, values)
        assert values[who.format("pss")] <= values[who.format("rss")], values
        assert values[who.format("private")] <= values[who.format("rss")], values
    for kind in MEMORY:
        assert values[repl.format(kind)] <= values[total.format(kind)], (kind, values)


def test_memory_is_reported_as_rss_pss_and_private(
    smoke_run: tuple[Path, dict[str, Any]],
) -> None:
    out, report = smoke_run
    s5 = report["scenarios"]["s5_memory"]
    for variant in s5["variants"]:
        _memory_is_consistent(variant, "peak_total_{}_mb", "peak_repl_{}_mb")
        for kind in MEMORY:  # the last sample reads every measure
            assert isinstance(variant[f"final_total_{kind}_mb"], float), variant
        assert variant["final_total_pss_mb"] <= variant["final_total_rss_mb"]
        assert variant["final_total_private_mb"] <= variant["final_total_rss_mb"]
        assert 1 <= variant["pss_samples"] <= variant["samples"], variant
        assert variant["pss_sample_ms"]["p50"] <= variant["pss_sample_ms"]["max"]
    s3 = report["scenarios"]["s3_imports"]
    for variant in s3["variants"]:
        memory = variant["memory_at_end"]
        _memory_is_consistent(memory, "total_{}_mb", "repl_{}_mb")
        assert 0 <= memory["repls"] <= memory["processes"], (variant["name"], memory)
        if variant["name"].startswith("leanpool"):  # its REPLs are up until the pool closes
            assert memory["repls"] >= 1 and memory["repl_rss_mb"] > 0, (variant["name"], memory)
    text = (out / "latest.md").read_text(encoding="utf-8")
    for title in ("### 3. Import-heavy work", "### 5. Memory with leaking commands"):
        section = text.split(title, 1)[1].split("\n### ", 1)[0]
        assert "| RSS | PSS | private | largest REPL: RSS | PSS | private |" in section, title
