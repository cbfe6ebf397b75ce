"""The benchmark report's ratios and targets (bench/report.py), built from made-up scenario
results: no scenario runs here. A headline ratio that is missing, renamed, wired to another
measurement or given another target fails one of these tests; so does a documentation page that
no longer lists it."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is a folder of the checkout, not an installed package
    sys.path.insert(0, str(ROOT))
report = importlib.import_module("bench.report")
rl = importlib.import_module("bench.scenarios.rl")
SIZES = importlib.import_module("bench.modes").SIZES

# The headline ratios and their targets (issue 14), in the report's order.
HEADLINE = {
    "throughput_trivial_1w_vs_raw": ">= 0.9",
    "throughput_trivial_1w_sequential_vs_raw": ">= 0.5",
    "scaling_efficiency_2w": ">= 0.9",
    "ray_vs_loky_throughput": ">= 0.8",
    "speedup_vs_seed_recipe": ">= 10",
    "affinity_vs_blind": ">= 1.5",
    "faults_throughput_retained": ">= 0.95",
    "speedup_vs_leaninteract_pool_nofaults": ">= 1.5",
    "useful_results_per_s_vs_leaninteract": ">= 2",
    "rl_floor_vs_leanpool": ">= 0.7",
    "json_parse_shallow_vs_json_loads": ">= 0.95",
    "verdict_policy_throughput_vs_plain": ">= 0.8",
    "speedup_vs_kimina_server": ">= 1.5",
    "lost_results": "== 0",
}
RETIRED = {"speedup_vs_leaninteract_pool", "speedup_vs_leaninteract_pool_defaults"}
QUICK = SIZES["quick"]  # only its plan is made: it has crashes and hangs
SEED = 20251125
PLANNED, PLANNED_NOFAULTS = (rl.plan_summary(p)["requests"] for p in rl.plans(QUICK, SEED))


def _variant(
    name: str,
    seconds: float,
    useful_per_s: float,
    latency: tuple[float, float, float],
    requests: int = PLANNED_NOFAULTS,
) -> dict[str, Any]:
    p50, p90, p99 = latency
    return {
        "name": name,
        "requests": requests,
        "results": requests,
        "lost": 0,
        "seconds": seconds,
        "throughput_rps": round(requests / seconds, 2),
        "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "mean": p50, "max": p99},
        "outcomes": {"ok": requests},
        "checks": {"as_planned": requests},
        "useful_results": requests,
        "useful_results_per_s": useful_per_s,
    }


def _rl_variants(with_leaninteract: bool = True) -> dict[str, dict[str, Any]]:
    """Every number distinct, so that a ratio reading the wrong variant shows."""
    variants = {
        "leanpool": _variant("leanpool", 13.0, 7.0, (101, 102, 103), PLANNED),
        "leanpool_standby": _variant("leanpool_standby", 10.0, 9.0, (201, 202, 203), PLANNED),
        "leanpool_standby_nofaults": _variant(
            "leanpool_standby_nofaults", 4.0, 20.0, (301, 302, 303)
        ),
    }
    if with_leaninteract:
        variants["leaninteract"] = _variant("leaninteract", 5.0, 3.0, (401, 402, 403), PLANNED)
        variants["leaninteract_nofaults"] = _variant(
            "leaninteract_nofaults", 7.0, 5.0, (501, 502, 503)
        )
    return variants


def _scenarios(with_leaninteract: bool = True) -> dict[str, Any]:
    plan, plan_nofaults = rl.plans(QUICK, SEED)
    s7 = rl.summarize(_rl_variants(with_leaninteract), plan, plan_nofaults, QUICK, workers=2)
    return {
        "s1_overhead": {
            "variants": [],
            "throughput_vs_raw": {
                "raw_pipe": 1.0,
                "leanpool_LeanPool_1w_stream": 0.91,
                "leanpool_LeanPool_1w_sequential": 0.52,
                "leaninteract_LeanServer": 0.81,
            },
        },
        "s2_scaling": {
            "variants": [],
            "scaling_efficiency": {
                "leanpool_1w": 0.97,
                "leanpool_2w": 0.93,
                "leaninteract_2w_vs_leaninteract_single": 0.96,
            },
            "ray_skipped": None,
            "ray_vs_loky_throughput": 0.87,
            "ray_vs_loky_throughput_loky_alone": 0.84,
        },
        "s3_imports": {
            "variants": [],
            "time_vs_leanpool_affinity": {
                "seed_recipe": 33.0,
                "leanpool_no_affinity": 26.0,
                "leaninteract_pool": 2.2,
            },
        },
        "s4_faults": {
            "variants": [],
            "throughput_retained": 0.96,
            "p99_ratio_with_vs_without": 1.1,
        },
        "s7_rl": s7,
        "s8_json": {
            "variants": [],
            "shallow_vs_json_loads": 0.99,
            "iterative_vs_json_loads": 0.19,
        },
        "s9_verdicts": {
            "variants": [],
            "policy_throughput_vs_plain": 0.95,
            "policy_statement_throughput_vs_plain": 0.92,
        },
        "s10_serve": {
            "variants": [],
            "speedup_vs_kimina_server": 5.5,
            "speedup_vs_kimina_server_mixed": 9.0,
        },
    }


def _build(scenarios: dict[str, Any]) -> dict[str, Any]:
    machine = {
        "cores": 2,
        "cpu_model": "test",
        "memory_gb": 1.0,
        "python": "3",
        "packages": {"leanpool": "0", "lean-interact": "0"},
        "load_average_at_start": [0.0, 0.0, 0.0],
    }
    return report.build("quick", "now", 1.0, machine, scenarios, 2, [])


def test_the_headline_ratios_and_targets_are_exactly_these() -> None:
    assert {t.key: t.describe() for t in report.TARGETS} == HEADLINE
    assert [t.key for t in report.TARGETS] == list(HEADLINE)
    built = _build(_scenarios())
    assert list(built["ratios"]) == list(HEADLINE)
    assert {key: t["target"] for key, t in built["targets"].items()} == HEADLINE


def test_retired_ratios_are_gone() -> None:
    built = _build(_scenarios())
    for name in RETIRED:
        assert name not in built["ratios"]
        assert name not in built["targets"]
        assert name not in built["extra_ratios"]
    # the headlines are not repeated among the other ratios
    assert not set(built["extra_ratios"]) & set(HEADLINE)


def test_each_headline_ratio_reads_its_own_measurement() -> None:
    plan, plan_nofaults = rl.plans(QUICK, SEED)
    floor, floor_nofaults = (
        rl.floor_seconds(rl.plan_summary(p), QUICK.import_ms, QUICK.rl_timeout_s, workers=2)
        for p in (plan, plan_nofaults)
    )
    assert floor > floor_nofaults > 0  # the plan with faults waits for its hangs' timeouts
    built = _build(_scenarios())
    assert built["ratios"] == {
        "throughput_trivial_1w_vs_raw": 0.91,
        "throughput_trivial_1w_sequential_vs_raw": 0.52,
        "scaling_efficiency_2w": 0.93,
        "ray_vs_loky_throughput": 0.87,  # loky measured beside Ray, not the 0.84 before it
        "speedup_vs_seed_recipe": 33.0,
        "affinity_vs_blind": 26.0,
        "faults_throughput_retained": 0.96,
        "speedup_vs_leaninteract_pool_nofaults": round(7.0 / 4.0, 3),  # leaninteract / standby
        "useful_results_per_s_vs_leaninteract": round(9.0 / 3.0, 3),  # standby / leaninteract
        "rl_floor_vs_leanpool": round(floor / 10.0, 3),  # floor / standby, faults
        "json_parse_shallow_vs_json_loads": 0.99,
        "verdict_policy_throughput_vs_plain": 0.95,
        "speedup_vs_kimina_server": 5.5,
        "lost_results": 0,
    }
    assert built["extra_ratios"]["ray_vs_loky_throughput_loky_alone"] == 0.84
    assert built["extra_ratios"]["useful_results_per_s_vs_leaninteract_defaults"] == round(
        7.0 / 3.0, 3
    )
    met = {key: t["met"] for key, t in built["targets"].items()}
    assert met["speedup_vs_leaninteract_pool_nofaults"] is True  # 1.75 >= 1.5
    assert met["useful_results_per_s_vs_leaninteract"] is True  # 3.0 >= 2.0
    assert met["throughput_trivial_1w_sequential_vs_raw"] is True  # 0.52 >= 0.5


@pytest.mark.parametrize(
    ("key", "value", "met"),
    [
        ("throughput_trivial_1w_vs_raw", 0.89, False),
        ("throughput_trivial_1w_sequential_vs_raw", 0.49, False),
        ("ray_vs_loky_throughput", 0.79, False),
        ("ray_vs_loky_throughput", 0.8, True),
        ("faults_throughput_retained", 0.94, False),
        ("speedup_vs_leaninteract_pool_nofaults", 1.49, False),
        ("useful_results_per_s_vs_leaninteract", 1.99, False),
        ("rl_floor_vs_leanpool", 0.69, False),
        ("rl_floor_vs_leanpool", 0.7, True),
        ("lost_results", 1, False),
    ],
)
def test_targets_are_met_at_their_threshold_only(key: str, value: float, met: bool) -> None:
    target = {t.key: t for t in report.TARGETS}[key]
    assert target.met(value) is met


def test_the_ratios_follow_the_rl_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """One constant names leanpool's RL configuration: the scenario and the report follow it."""
    monkeypatch.setattr(rl, "RL_CONFIGURATION", "leanpool")
    monkeypatch.setattr(report, "RL_CONFIGURATION", "leanpool")
    variants = _rl_variants()
    variants["leanpool_nofaults"] = variants.pop("leanpool_standby_nofaults")
    variants["leanpool_nofaults"]["name"] = "leanpool_nofaults"
    plan, plan_nofaults = rl.plans(QUICK, SEED)
    s7 = rl.summarize(variants, plan, plan_nofaults, QUICK, workers=2)
    ratios = report.ratios({"s7_rl": s7}, 2)
    assert ratios["speedup_vs_leaninteract_pool_nofaults"] == round(7.0 / 4.0, 3)
    assert ratios["useful_results_per_s_vs_leaninteract"] == round(7.0 / 3.0, 3)
    floor = rl.floor_seconds(rl.plan_summary(plan), QUICK.import_ms, QUICK.rl_timeout_s, 2)
    assert ratios["rl_floor_vs_leanpool"] == round(floor / 13.0, 3)


def test_without_leaninteract_its_ratios_are_none() -> None:
    built = _build(_scenarios(with_leaninteract=False))
    for key in ("speedup_vs_leaninteract_pool_nofaults", "useful_results_per_s_vs_leaninteract"):
        assert built["ratios"][key] is None
        assert built["targets"][key]["met"] is None
    assert isinstance(built["ratios"]["rl_floor_vs_leanpool"], float)
    assert built["scenarios"]["s7_rl"]["latency"]["leanpool_standby"]["nofaults"]["p90"] == 302
    assert "leaninteract" not in built["scenarios"]["s7_rl"]["latency"]


def test_without_ray_its_ratio_is_none_and_a_note_says_why() -> None:
    scenarios = _scenarios()
    built = _build(scenarios)
    assert not any("Ray backend" in note for note in built["notes"])
    assert "Ray backend's throughput / loky's: 0.87" in report.markdown(built, [])
    why = "Ray is not installed (pip install 'leanpool[ray]'): No module named 'ray'"
    scenarios["s2_scaling"].update(
        ray_skipped=why, ray_vs_loky_throughput=None, ray_vs_loky_throughput_loky_alone=None
    )
    built = _build(scenarios)
    assert built["ratios"]["ray_vs_loky_throughput"] is None
    assert built["targets"]["ray_vs_loky_throughput"]["met"] is None
    assert built["extra_ratios"]["ray_vs_loky_throughput_loky_alone"] is None
    assert f"Scenario 2 did not measure the Ray backend: {why}." in built["notes"]
    assert f"Ray backend not measured: {why}." in report.markdown(built, [])


def test_scenario_7_reports_latency_with_and_without_faults() -> None:
    built = _build(_scenarios())
    s7 = built["scenarios"]["s7_rl"]
    assert "_plot" not in s7
    assert s7["latency"] == {
        "leanpool": {"faults": {"p50": 101, "p90": 102, "p99": 103}, "nofaults": None},
        "leanpool_standby": {
            "faults": {"p50": 201, "p90": 202, "p99": 203},
            "nofaults": {"p50": 301, "p90": 302, "p99": 303},
        },
        "leaninteract": {
            "faults": {"p50": 401, "p90": 402, "p99": 403},
            "nofaults": {"p50": 501, "p90": 502, "p99": 503},
        },
    }
    faults = {v["name"]: v["faults"] for v in s7["variants"]}
    assert faults == {
        "leanpool": True,
        "leanpool_standby": True,
        "leanpool_standby_nofaults": False,
        "leaninteract": True,
        "leaninteract_nofaults": False,
    }
    # the plan without faults has none, and is otherwise the same generator's
    assert s7["plan_nofaults"]["planned_crashes"] == s7["plan_nofaults"]["planned_hangs"] == 0
    assert s7["plan_nofaults"]["episodes"] == s7["plan"]["episodes"]


def test_markdown_shows_every_ratio_and_the_latency_table() -> None:
    built = _build(_scenarios())
    text = report.markdown(built, [])
    for key, rule in HEADLINE.items():
        assert re.search(rf"^\| `{key}` \| [^|]+ \| {re.escape(rule)} \|", text, re.M), key
    section = text.split("### 7. RL-like mixed workload", 1)[1].split("\n### ", 1)[0]
    assert "| leanpool_standby | 201 | 202 | 203 | 301 | 302 | 303 |" in section
    assert "| leaninteract | 401 | 402 | 403 | 501 | 502 | 503 |" in section
    assert "| leanpool | 101 | 102 | 103 | – | – | – |" in section
    for name in ("leanpool_standby_nofaults", "leaninteract_nofaults"):
        assert (
            f"| {name} | {PLANNED_NOFAULTS} |" in section
        )  # its row of the variants table, outcomes shown


def test_an_unequal_run_without_faults_is_noted() -> None:
    scenarios = _scenarios()
    assert not any("without faults did not answer" in n for n in _build(scenarios)["notes"])
    variant = next(
        v for v in scenarios["s7_rl"]["variants"] if v["name"] == "leaninteract_nofaults"
    )
    variant["checks"] = {"as_planned": PLANNED_NOFAULTS, "wrong_state": 4}
    notes = [n for n in _build(scenarios)["notes"] if "without faults did not answer" in n]
    assert len(notes) == 1 and "leaninteract_nofaults" in notes[0] and "4 responses" in notes[0]


def test_the_docs_list_every_headline_ratio_with_its_target() -> None:
    readme = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for key, rule in HEADLINE.items():
        operator, threshold = rule.split()
        number = rf"{re.escape(threshold)}(\.0+)?"
        assert re.search(rf"^\| `{key}` \| \[{operator} {number}\]", readme, re.M), key
        assert re.search(rf"^\| `{key}` \| {operator} {number} \|", page, re.M), key
    for name in RETIRED:
        assert f"| `{name}` |" not in readme
        assert f"| `{name}` |" not in page
    assert "Retired: `speedup_vs_leaninteract_pool`" in page


def _memory(rss: float, pss: float, private: float, repls: int) -> dict[str, Any]:
    return {
        "total_rss_mb": rss,
        "total_pss_mb": pss,
        "total_private_mb": private,
        "repl_rss_mb": rss / 2,
        "repl_pss_mb": pss / 2,
        "repl_private_mb": private / 2,
        "processes": repls + 2,
        "repls": repls,
    }


def test_markdown_shows_rss_pss_and_private_memory_side_by_side() -> None:
    scenarios = _scenarios()
    base = _variant("x", 1.0, 0.0, (1, 2, 3), requests=10)
    scenarios["s3_imports"]["variants"] = [
        {**base, "name": "leanpool_affinity", "memory_at_end": _memory(3400.0, 1700.0, 90.0, 2)},
        {**base, "name": "seed_recipe", "memory_at_end": _memory(120.0, 80.0, 70.0, 0)},
        {**base, "name": "leaninteract_pool"},  # no sample: no row
    ]
    scenarios["s5_memory"] = {
        "variants": [
            {
                **base,
                "name": "leanpool_unlimited",
                "peak_total_rss_mb": 2100.0,
                "peak_total_pss_mb": 2050.0,
                "peak_total_private_mb": 2000.0,
                "peak_repl_rss_mb": 1010.0,
                "peak_repl_pss_mb": 1005.0,
                "peak_repl_private_mb": 1000.0,
                "final_total_rss_mb": 2090.0,
                "final_total_pss_mb": 2040.0,
                "final_total_private_mb": 1990.0,
                "repl_restarts": {},
                "worker_recycles": {},
                "samples": 40,
                "pss_samples": 20,
                "pss_sample_ms": {"p50": 4.5, "max": 9.25},
            }
        ]
    }
    text = report.markdown(_build(scenarios), [])
    s3 = text.split("### 3. Import-heavy work", 1)[1].split("\n### ", 1)[0]
    assert "| leanpool_affinity | 4 | 2 | 3,400 | 1,700 | 90 | 1,700 | 850 | 45 |" in s3
    assert "| seed_recipe | 2 | 0 | 120 | 80 | 70 | 60 | 40 | 35 |" in s3
    assert "| leaninteract_pool | 4 |" not in s3.split("Memory at the end", 1)[1]
    s5 = text.split("### 5. Memory with leaking commands", 1)[1].split("\n### ", 1)[0]
    assert "| leanpool_unlimited | 2,100 | 2,050 | 2,000 | 1,010 | 1,005 | 1,000 | – | – |" in s5
    assert "PSS read in 20 of 40 samples (a sample with it took 4.5 ms, at most 9.25 ms)" in s5
