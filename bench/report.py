"""latest.json and latest.md: the headline ratios against their targets, machine facts, and
every scenario's variants (keys documented in bench/README.md)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from bench.scenarios.rl import LEANINTERACT, NOFAULTS, RL_CONFIGURATION

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Target:
    key: str
    scenario: str
    at_least: float | None  # value >= at_least, or
    exactly: float | None = None  # value == exactly
    meaning: str = ""

    def describe(self) -> str:
        return f">= {self.at_least:g}" if self.at_least is not None else f"== {self.exactly:g}"

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        if self.at_least is not None:
            return value >= self.at_least
        return value == self.exactly


TARGETS = (
    Target(
        "throughput_trivial_1w_vs_raw",
        "s1_overhead",
        0.9,
        meaning="LeanPool (1 worker, streaming) / raw pipe loop, trivial commands, throughput",
    ),
    Target(
        "throughput_trivial_1w_sequential_vs_raw",
        "s1_overhead",
        0.5,
        meaning="LeanPool (1 worker, one request at a time) / raw pipe loop, trivial commands, "
        "throughput",
    ),
    Target(
        "scaling_efficiency_2w",
        "s2_scaling",
        0.9,
        meaning="LeanPool with 2 workers / (2 x single LeanServer), cpu_ms=20, throughput",
    ),
    Target(
        "ray_vs_loky_throughput",
        "s2_scaling",
        0.8,
        meaning="LeanPool with the Ray backend (2 workers, a local Ray) / LeanPool with loky (2 "
        "workers, interleaved with it while Ray runs), cpu_ms=20, throughput",
    ),
    Target(
        "speedup_vs_seed_recipe",
        "s3_imports",
        10.0,
        meaning="seed recipe time / LeanPool (header affinity) time, import-heavy work",
    ),
    Target(
        "affinity_vs_blind",
        "s3_imports",
        1.5,
        meaning="LeanPool without header affinity time / with it",
    ),
    Target(
        "faults_throughput_retained",
        "s4_faults",
        0.95,
        meaning="throughput with 2% crashing commands / without",
    ),
    Target(
        "speedup_vs_leaninteract_pool_nofaults",
        "s7_rl",
        1.5,
        meaning=f"LeanInteract LeanServerPool time / LeanPool time ({RL_CONFIGURATION}), the "
        "RL-like plan without crashes or hangs (both send every request of it)",
    ),
    Target(
        "useful_results_per_s_vs_leaninteract",
        "s7_rl",
        2.0,
        meaning=f"right results per second, LeanPool ({RL_CONFIGURATION}) / LeanInteract "
        "LeanServerPool, the RL-like plan with 2% crashes and 1% hangs",
    ),
    Target(
        "rl_floor_vs_leanpool",
        "s7_rl",
        0.7,
        meaning=f"least time to answer the whole RL-like plan (with faults) / LeanPool's time "
        f"({RL_CONFIGURATION})",
    ),
    Target(
        "json_parse_shallow_vs_json_loads",
        "s8_json",
        0.95,
        meaning="json.loads time / loads_deep time, a typical 1 MB info-tree response",
    ),
    Target(
        "verdict_policy_throughput_vs_plain",
        "s9_verdicts",
        0.8,
        meaning="plain run time / time under the verdict policy (Lean asked for axioms)",
    ),
    Target(
        "speedup_vs_kimina_server",
        "s10_serve",
        1.5,
        meaning="Kimina server time / leanpool serve time, the same kimina-client load of "
        "trivial checks (same simulator, same REPL count)",
    ),
    Target(
        "lost_results",
        "all",
        None,
        0,
        meaning="requests without exactly one result (response or exception), all scenarios",
    ),
)


def _get(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def lost_results(scenarios: dict[str, Any]) -> dict[str, Any]:
    by_scenario = {
        name: sum(
            int(v.get("lost_all_repeats", v.get("lost", 0))) for v in result.get("variants", [])
        )
        for name, result in scenarios.items()
    }
    return {"total": sum(by_scenario.values()), "by_scenario": by_scenario}


def _useful_per_s_ratio(scenarios: dict[str, Any], leanpool: str) -> float | None:
    """Scenario 7 (with faults): right results per second, a leanpool variant / LeanInteract."""
    rl = {v["name"]: v for v in _get(scenarios, "s7_rl", "variants") or []}
    mine = (rl.get(leanpool) or {}).get("useful_results_per_s")
    theirs = (rl.get(LEANINTERACT) or {}).get("useful_results_per_s")
    return round(mine / theirs, 3) if mine and theirs else None


def ratios(scenarios: dict[str, Any], workers: int) -> dict[str, Any]:
    """The headline ratios: exactly the keys of `TARGETS`, in its order."""
    return {
        "throughput_trivial_1w_vs_raw": _get(
            scenarios, "s1_overhead", "throughput_vs_raw", "leanpool_LeanPool_1w_stream"
        ),
        "throughput_trivial_1w_sequential_vs_raw": _get(
            scenarios, "s1_overhead", "throughput_vs_raw", "leanpool_LeanPool_1w_sequential"
        ),
        "scaling_efficiency_2w": _get(
            scenarios, "s2_scaling", "scaling_efficiency", f"leanpool_{workers}w"
        ),
        "ray_vs_loky_throughput": _get(scenarios, "s2_scaling", "ray_vs_loky_throughput"),
        "speedup_vs_seed_recipe": _get(
            scenarios, "s3_imports", "time_vs_leanpool_affinity", "seed_recipe"
        ),
        "affinity_vs_blind": _get(
            scenarios, "s3_imports", "time_vs_leanpool_affinity", "leanpool_no_affinity"
        ),
        "faults_throughput_retained": _get(scenarios, "s4_faults", "throughput_retained"),
        "speedup_vs_leaninteract_pool_nofaults": _get(
            scenarios, "s7_rl", "leaninteract_time_vs_leanpool_nofaults"
        ),
        "useful_results_per_s_vs_leaninteract": _useful_per_s_ratio(scenarios, RL_CONFIGURATION),
        "rl_floor_vs_leanpool": _get(scenarios, "s7_rl", "floor_vs_leanpool"),
        "json_parse_shallow_vs_json_loads": _get(scenarios, "s8_json", "shallow_vs_json_loads"),
        "verdict_policy_throughput_vs_plain": _get(
            scenarios, "s9_verdicts", "policy_throughput_vs_plain"
        ),
        "speedup_vs_kimina_server": _get(scenarios, "s10_serve", "speedup_vs_kimina_server"),
        "lost_results": lost_results(scenarios)["total"],
    }


def extra_ratios(scenarios: dict[str, Any], workers: int) -> dict[str, Any]:
    return {
        "throughput_trivial_leaninteract_server_vs_raw": _get(
            scenarios, "s1_overhead", "throughput_vs_raw", "leaninteract_LeanServer"
        ),
        "scaling_efficiency_1w": _get(scenarios, "s2_scaling", "scaling_efficiency", "leanpool_1w"),
        "leaninteract_scaling_efficiency_2w": _get(
            scenarios,
            "s2_scaling",
            "scaling_efficiency",
            f"leaninteract_{workers}w_vs_leaninteract_single",
        ),
        "memory_budget_peak_vs_budget": _get(scenarios, "s5_memory", "budget_peak_vs_budget"),
        "ray_vs_loky_throughput_loky_alone": _get(
            scenarios, "s2_scaling", "ray_vs_loky_throughput_loky_alone"
        ),
        "speedup_vs_leaninteract_pool_imports": _get(
            scenarios, "s3_imports", "time_vs_leanpool_affinity", "leaninteract_pool"
        ),
        "faults_p99_ratio": _get(scenarios, "s4_faults", "p99_ratio_with_vs_without"),
        "useful_results_per_s_vs_leaninteract_defaults": _useful_per_s_ratio(scenarios, "leanpool"),
        "json_parse_iterative_vs_json_loads": _get(scenarios, "s8_json", "iterative_vs_json_loads"),
        "verdict_policy_with_statements_vs_plain": _get(
            scenarios, "s9_verdicts", "policy_statement_throughput_vs_plain"
        ),
        "speedup_vs_kimina_server_mixed": _get(
            scenarios, "s10_serve", "speedup_vs_kimina_server_mixed"
        ),
    }


def machine_info() -> dict[str, Any]:
    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            name: package(name)
            for name in ("leanpool", "lean-interact", "loky", "pydantic", "psutil", "matplotlib")
        },
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def build(
    mode: str,
    started_at: str,
    duration_s: float,
    machine: dict[str, Any],
    scenarios: dict[str, Any],
    workers: int,
    notes: list[str],
) -> dict[str, Any]:
    headline = ratios(scenarios, workers)
    notes = [*notes, *_findings(scenarios)]
    machine = {**machine, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}
    public = {
        name: {k: v for k, v in result.items() if not k.startswith("_")}
        for name, result in scenarios.items()
    }
    return {
        "schema": SCHEMA_VERSION,
        "mode": mode,
        "started_at": started_at,
        "duration_s": round(duration_s, 1),
        "workers": workers,
        "machine": machine,
        "ratios": headline,
        "targets": {
            t.key: {
                "target": t.describe(),
                "value": headline.get(t.key),
                "met": t.met(headline.get(t.key)),
                "meaning": t.meaning,
            }
            for t in TARGETS
        },
        "extra_ratios": extra_ratios(scenarios, workers),
        "lost_results": lost_results(scenarios),
        "notes": notes,
        "scenarios": public,
    }


def _findings(scenarios: dict[str, Any]) -> list[str]:
    """Notes without which a headline ratio would mislead."""
    notes: list[str] = []
    ray_skipped = _get(scenarios, "s2_scaling", "ray_skipped")
    if ray_skipped:
        notes.append(f"Scenario 2 did not measure the Ray backend: {ray_skipped}.")
    rl = {v["name"]: v for v in _get(scenarios, "s7_rl", "variants") or []}
    li, lp = rl.get(LEANINTERACT), rl.get(RL_CONFIGURATION)
    planned = _get(scenarios, "s7_rl", "plan", "requests")
    if li and lp and planned:
        checks = li.get("checks", {})
        notes.append(
            f"Scenario 7 with faults compares unequal work (so its time ratio is no headline; "
            f"`speedup_vs_leaninteract_pool_nofaults` compares the plan without faults): "
            f"leanpool ({RL_CONFIGURATION}) sent {lp['requests'] - lp.get('setup_requests', 0)} "
            f"of the plan's {planned} requests ({lp.get('checks', {}).get('as_planned', 0)} "
            f"answered as planned); LeanInteract "
            f"sent {li['requests'] - li.get('setup_requests', 0)} of the plan's {planned} (plus "
            f"{li.get('setup_requests', 0)} header imports): "
            f"{checks.get('skipped_parent_failed', 0)} steps were never sent because their "
            f"parent state was lost, {li['outcomes'].get('state_lost', 0)} failed with a lost "
            f"state and {checks.get('wrong_state', 0)} responses showed another episode's goal. "
            f"Results that are right, per second: leanpool {lp.get('useful_results_per_s')}, "
            f"LeanInteract {li.get('useful_results_per_s')}."
        )
    if lp and planned:
        stats = lp.get("pool_stats") or {}
        restarts = sum((stats.get("restarts") or {}).values())
        if restarts:
            notes.append(
                f"Where leanpool's extra time goes in scenario 7: after each of its {restarts} "
                f"REPL restarts (planned crashes and hangs) the states that later steps need are "
                f"rebuilt ({stats.get('states_rebuilt', '?')} replayed and "
                f"{stats.get('states_unpickled', 0)} restored from checkpoints in all) and the "
                f"headers imported again ({stats.get('header_imports', '?')} imports in all, the "
                f"standby's included); on 2 cores that work competes with the requests. "
                f"LeanInteract does none of it: it drops the steps whose state was lost."
            )
        floor = _get(scenarios, "s7_rl", "floor_seconds")
        best = _get(scenarios, "s7_rl", "leaninteract_time_vs_floor")
        if floor:
            notes.append(
                f"The least time in which the whole plan with faults can be answered on "
                f"{_get(scenarios, 's7_rl', 'workers')} workers is {floor} s (its "
                f"CPU once per distinct request, each header imported once, and each planned "
                f"hang holding a REPL until its timeout), before any restart or rebuild; "
                f"leanpool ({RL_CONFIGURATION}) took {_fmt(lp.get('seconds'))} s "
                f"(`rl_floor_vs_leanpool` {_get(scenarios, 's7_rl', 'floor_vs_leanpool')})"
                + (
                    f", and a pool answering all of it can reach at most {best} x "
                    f"LeanInteract's time on this plan."
                    if best
                    else "."
                )
            )
    notes += _unequal_without_faults(scenarios, rl)
    return notes


def _unequal_without_faults(scenarios: dict[str, Any], rl: dict[str, Any]) -> list[str]:
    """A note when a variant of the plan without faults did not answer all of it as planned
    (then `speedup_vs_leaninteract_pool_nofaults` compares unequal work too)."""
    planned = _get(scenarios, "s7_rl", "plan_nofaults", "requests")
    short: list[str] = []
    for name in (RL_CONFIGURATION + NOFAULTS, LEANINTERACT + NOFAULTS):
        variant = rl.get(name)
        if not variant or not planned:
            continue
        checks = variant.get("checks", {})
        as_planned = checks.get("as_planned", 0)
        wrong = checks.get("wrong_state", 0)
        if as_planned < planned or wrong:
            short.append(
                f"{name} answered {as_planned} of the plan's {planned} requests as planned "
                f"({checks.get('skipped_parent_failed', 0)} never sent because their parent "
                f"state was lost, {variant['outcomes'].get('state_lost', 0)} lost states, "
                f"{wrong} responses showing another episode's goal, unexpected outcomes: "
                f"{_fmt(variant.get('unexpected_outcomes'))})"
            )
    if not short:
        return []
    return [
        "Scenario 7 without faults did not answer the whole plan on every side, so "
        "`speedup_vs_leaninteract_pool_nofaults` compares unequal work too: "
        + "; ".join(short)
        + "."
    ]


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------ markdown
def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "–"
    return str(value)


def _variants_table(variants: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| variant | requests | seconds | req/s | p50 ms | p99 ms | outcomes | lost |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for v in variants:
        latency = v.get("latency_ms", {})
        seconds = _fmt(v.get("seconds"))
        if v.get("scaled_from"):
            seconds += f" (scaled from {v['scaled_from']} commands)"
        lines.append(
            f"| {v['name']} | {v['requests']} | {seconds} | {_fmt(v.get('throughput_rps'))} | "
            f"{_fmt(latency.get('p50'))} | {_fmt(latency.get('p99'))} | "
            f"{_fmt(v.get('outcomes'))} | {v.get('lost')} |"
        )
    return lines


_PLOTS = {
    "s1_overhead": ["s1_throughput.png", "s1_latency_cdf.png"],
    "s2_scaling": ["s2_scaling.png"],
    "s3_imports": ["s3_imports.png"],
    "s5_memory": ["s5_memory.png"],
    "s6_streaming": ["s6_streaming.png"],
    "s7_rl": ["s7_rl.png"],
}

_TITLES = {
    "s1_overhead": "1. Client overhead (trivial commands)",
    "s2_scaling": "2. Scaling (CPU-bound commands)",
    "s3_imports": "3. Import-heavy work",
    "s4_faults": "4. Faults",
    "s5_memory": "5. Memory with leaking commands",
    "s6_streaming": "6. Streaming through imap_unordered",
    "s7_rl": "7. RL-like mixed workload",
    "s8_json": "8. Parsing responses",
    "s9_verdicts": "9. The verdict policy",
    "s10_serve": "10. leanpool serve against the Kimina server",
}


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    machine = report["machine"]
    lines = [
        f"## Latest run: `{report['mode']}` mode, {report['started_at']}",
        "",
        f"{machine['cores']} cores ({machine['cpu_model']}), {machine['memory_gb']} GB, "
        f"Python {machine['python']}, leanpool {machine['packages'].get('leanpool')}, "
        f"lean-interact {machine['packages'].get('lean-interact')}; {report['workers']} workers; "
        f"load average {machine['load_average_at_start']} at start, "
        f"{machine['load_average_at_end']} at end; {report['duration_s']} s in all. "
        f"Everything runs on the REPL simulator.",
        "",
        "| ratio | value | target | met | meaning |",
        "| --- | ---: | ---: | :---: | --- |",
    ]
    for key, target in report["targets"].items():
        met = {True: "yes", False: "**no**", None: "–"}[target["met"]]
        lines.append(
            f"| `{key}` | {_fmt(target['value'])} | {target['target']} | {met} | "
            f"{target['meaning']} |"
        )
    lines += ["", "Other ratios: " + _fmt(report["extra_ratios"]) + ".", ""]
    for note in report["notes"]:
        lines.append(f"- {note}")
    if report["notes"]:
        lines.append("")
    for name, result in report["scenarios"].items():
        lines += [f"### {_TITLES.get(name, name)}", ""]
        if "error" in result:
            lines += ["The scenario failed:", "", "```", result["error"][-3000:], "```", ""]
            continue
        if result.get("description"):
            lines += [result["description"] + ".", ""]
        lines += _variants_table(result.get("variants", []))
        lines.append("")
        lines += _scenario_details(name, result)
        for plot in _PLOTS.get(name, []):
            if plot in plots:
                lines += [f"![{plot}]({plot})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _scenario_details(name: str, result: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if name == "s2_scaling":
        lines.append(f"Scaling efficiency: {_fmt(result.get('scaling_efficiency'))}.")
        if result.get("ray_skipped"):
            lines.append(f"Ray backend not measured: {result['ray_skipped']}.")
        elif "ray_vs_loky_throughput" in result:
            lines.append(
                f"Ray backend's throughput / loky's: "
                f"{_fmt(result.get('ray_vs_loky_throughput'))} with loky measured while Ray "
                f"runs, {_fmt(result.get('ray_vs_loky_throughput_loky_alone'))} with loky "
                f"measured before Ray started."
            )
    elif name == "s3_imports":
        lines.append(
            f"Time relative to leanpool with affinity: "
            f"{_fmt(result.get('time_vs_leanpool_affinity'))}."
        )
        lines += _s3_memory_table(result.get("variants", []))
    elif name == "s4_faults":
        recovery = result.get("recovery", {})
        lines.append(
            f"Throughput retained with crashes: {_fmt(result.get('throughput_retained'))}; "
            f"p99 with / without: {_fmt(result.get('p99_ratio_with_vs_without'))}."
        )
        lines.append("")
        lines.append("| recovery | median ms | max ms |")
        lines.append("| --- | ---: | ---: |")
        for key in ("after_hang_timeout", "after_worker_sigkill", "after_repl_sigkill"):
            item = recovery.get(key, {})
            lines.append(f"| {key} | {_fmt(item.get('median_ms'))} | {_fmt(item.get('max_ms'))} |")
        lines.append("")
        lines.append(
            f"Hang timeout {recovery.get('hang_timeout_s')} s, overshoot (timeout to the "
            f"caller seeing it): {_fmt(recovery.get('timeout_overshoot', {}).get('median_ms'))} "
            f"ms median. Outcomes of the hung requests (and of requests failing before the "
            f"worker served again): {recovery.get('hang_request_outcomes')}; requests that "
            f"failed after a worker SIGKILL: {recovery.get('failed_requests_after_worker_sigkill')}"
            f", after a REPL SIGKILL: {recovery.get('failed_requests_after_repl_sigkill')}."
        )
    elif name == "s5_memory":
        lines += _s5_memory_table(result.get("variants", []))
    elif name == "s6_streaming":
        for v in result.get("variants", []):
            lines.append(
                f"Parent RSS: {_fmt(v.get('parent_rss_before_mb'))} MB before, peak "
                f"{_fmt(v.get('parent_rss_peak_mb'))} MB, growth over the second half "
                f"{_fmt(v.get('parent_rss_growth_second_half_mb'))} MB "
                f"({v['results']} results of {v['requests']})."
            )
    elif name == "s7_rl":
        lines.append(f"Plan: {_fmt(result.get('plan'))}.")
        lines.append("")
        lines.append(f"Plan without faults: {_fmt(result.get('plan_nofaults'))}.")
        lines.append("")
        lines.append(
            f"Least time to answer the whole plan: {_fmt(result.get('floor_seconds'))} s with "
            f"faults, {_fmt(result.get('floor_seconds_nofaults'))} s without; floor / "
            f"{result.get('rl_configuration')} time: {_fmt(result.get('floor_vs_leanpool'))}; "
            f"LeanInteract time / {result.get('rl_configuration')} time: "
            f"{_fmt(result.get('leaninteract_time_vs_leanpool_nofaults'))} without faults "
            f"({_fmt(result.get('leaninteract_time_vs_leanpool'))} with faults, unequal work)."
        )
        lines.append("")
        lines += _rl_latency_table(result.get("latency") or {})
        lines.append("")
        for v in result.get("variants", []):
            lines.append(
                f"- {v['name']} ({v.get('driver')}): checks {_fmt(v.get('checks'))}; "
                f"unexpected {_fmt(v.get('unexpected_outcomes'))}; useful results/s "
                f"{_fmt(v.get('useful_results_per_s'))}"
                + (f"; pool {_fmt(v['pool_stats'])}." if v.get("pool_stats") else ".")
            )
        probe = result.get("leaninteract_async_probe")
        if probe:
            lines.append(f"- LeanInteract `async_run` probe: {_fmt(probe)}.")
    elif name == "s8_json":
        lines.append(
            f"On {_fmt(result.get('megabytes'))} MB: loads_deep (the fast path) at "
            f"{_fmt(result.get('shallow_vs_json_loads'))} x the speed of json.loads, the "
            f"iterative decoder alone at {_fmt(result.get('iterative_vs_json_loads'))} x "
            f"({_fmt(result.get('iterative_mb_per_s'))} MB/s). {result.get('deep_levels')} "
            f"levels deep ({_fmt(result.get('deep_megabytes'))} MB): parsed in "
            f"{_fmt(result.get('deep_parse_seconds'))} s ({_fmt(result.get('deep_mb_per_s'))} "
            f"MB/s), parsed and validated into models in "
            f"{_fmt(result.get('deep_parse_response_seconds'))} s."
        )
    elif name == "s9_verdicts":
        lines.append(
            f"{result.get('proofs')} proofs of {result.get('cpu_ms')} ms: under the verdict "
            f"policy at {_fmt(result.get('policy_throughput_vs_plain'))} x the plain run's "
            f"throughput, with reference statements at "
            f"{_fmt(result.get('policy_statement_throughput_vs_plain'))} x; every proof "
            f"passed: {result.get('all_passed')}."
        )
    elif name == "s10_serve":
        if result.get("kimina_skipped"):
            lines.append(f"Kimina server not measured: {result['kimina_skipped']}.")
        lines.append(
            f"Kimina server time / leanpool serve time: trivial checks "
            f"{_fmt(result.get('speedup_vs_kimina_server'))}, mixed load "
            f"{_fmt(result.get('speedup_vs_kimina_server_mixed'))}; client: "
            f"{result.get('client')}; same outcomes on both: {result.get('same_outcomes')}."
        )
        lines.append("")
        lines.append("| system | load | snippets/s | p50 ms per call | p99 ms per call |")
        lines.append("| --- | --- | ---: | ---: | ---: |")
        for system, loads in (result.get("latency") or {}).items():
            for load, numbers in loads.items():
                lines.append(
                    f"| {system} | {load} | {_fmt(numbers.get('snippets_per_s'))} | "
                    f"{_fmt(numbers.get('p50_ms'))} | {_fmt(numbers.get('p99_ms'))} |"
                )
    if lines:
        lines.append("")
    return lines


def _s3_memory_table(variants: list[dict[str, Any]]) -> list[str]:
    """Scenario 3: memory of the bench's descendant processes at the end of each variant, RSS
    beside PSS beside private memory (the imported modules' shared pages count in every REPL's
    RSS, once in PSS, not in private memory)."""
    measured = [v for v in variants if v.get("memory_at_end")]
    if not measured:
        return []
    lines = [
        "",
        "Memory at the end of each variant (MB; workers + REPLs, and the largest REPL): RSS "
        "counts an imported module's shared pages in every REPL that maps it, PSS once, "
        "private memory not at all.",
        "",
        "| variant | processes | REPLs | RSS | PSS | private | largest REPL: RSS | PSS | private |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in measured:
        m = v["memory_at_end"]
        cells = [m.get("processes"), m.get("repls")] + [
            _fmt(m.get(f"{who}_{kind}_mb"))
            for who in ("total", "repl")
            for kind in ("rss", "pss", "private")
        ]
        lines.append(f"| {v['name']} | " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _s5_memory_table(variants: list[dict[str, Any]]) -> list[str]:
    """Scenario 5: peak memory of workers + REPLs and of the largest REPL, RSS beside PSS
    beside private memory (each measure's own peak over the samples)."""
    lines = [
        "Peak memory over the run (MB; each measure's own peak over the samples):",
        "",
        "| variant | RSS | PSS | private | largest REPL: RSS | PSS | private | REPL restarts "
        "| worker recycles |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in variants:
        cells = [
            _fmt(v.get(f"peak_{who}_{kind}_mb"))
            for who in ("total", "repl")
            for kind in ("rss", "pss", "private")
        ] + [_fmt(v.get("repl_restarts")), _fmt(v.get("worker_recycles"))]
        lines.append(f"| {v['name']} | " + " | ".join(cells) + " |")
    lines.append("")
    for v in variants:
        cost = v.get("pss_sample_ms") or {}
        lines.append(
            f"- {v['name']}: at the end {_fmt(v.get('final_total_rss_mb'))} MB RSS, "
            f"{_fmt(v.get('final_total_pss_mb'))} MB PSS, "
            f"{_fmt(v.get('final_total_private_mb'))} MB private; PSS read in "
            f"{_fmt(v.get('pss_samples'))} of {_fmt(v.get('samples'))} samples (a sample with "
            f"it took {_fmt(cost.get('p50'))} ms, at most {_fmt(cost.get('max'))} ms)."
        )
        if v.get("budget_mb"):
            lines.append(
                f"- {v['name']}: peak total {_fmt(v.get('peak_total_rss_mb'))} MB RSS, "
                f"{_fmt(v.get('peak_total_pss_mb'))} MB PSS against a memory budget of "
                f"{_fmt(v.get('budget_mb'))} MB (the pool's own estimate peaked at "
                f"{_fmt(v.get('budget_peak_estimate_mb'))} MB); outcomes "
                f"{_fmt(v.get('outcomes'))} in {_fmt(v.get('seconds'))} s."
            )
    return lines


def _rl_latency_table(latency: dict[str, Any]) -> list[str]:
    """Scenario 7: per-request latency of each system, the plan with faults beside the plan
    without (– where a system did not run that plan)."""
    lines = [
        "| system | p50 ms | p90 ms | p99 ms | p50 ms, no faults | p90 ms, no faults | "
        "p99 ms, no faults |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for system, plans in latency.items():
        cells = [
            _fmt((plans.get(plan) or {}).get(q))
            for plan in ("faults", "nofaults")
            for q in ("p50", "p90", "p99")
        ]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return lines
