"""PNG plots of a run (matplotlib, optional: without it the report simply has no pictures).

Throughput bars (scenarios 1, 2, 3, 7), latency CDFs (scenario 1), RSS over time (5, 6).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

_DPI = 80


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def write_all(scenarios: dict[str, Any], out: Path) -> list[str]:
    """Write every plot whose data is present; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    written: list[str] = []
    makers = (
        ("s1_overhead", _s1_throughput, "s1_throughput.png"),
        ("s1_overhead", _s1_latency_cdf, "s1_latency_cdf.png"),
        ("s2_scaling", _s2_scaling, "s2_scaling.png"),
        ("s3_imports", _s3_imports, "s3_imports.png"),
        ("s5_memory", _s5_memory, "s5_memory.png"),
        ("s6_streaming", _s6_streaming, "s6_streaming.png"),
        ("s7_rl", _s7_rl, "s7_rl.png"),
    )
    for scenario, maker, filename in makers:
        data = scenarios.get(scenario, {}).get("_plot")
        if not data:
            continue
        figure = maker(data)
        if figure is None:
            continue
        figure.tight_layout()
        figure.savefig(out / filename, dpi=_DPI)
        import matplotlib.pyplot as plt

        plt.close(figure)
        written.append(filename)
    return written


def _bars(title: str, values: dict[str, float | None], unit: str, log: bool = False) -> Any:
    import matplotlib.pyplot as plt

    names = [name for name, value in values.items() if value]
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(names) + 1.4))
    numbers = [float(values[name] or 0.0) for name in names]
    bars = axes.barh(names, numbers, color="#4f5bd5")
    axes.invert_yaxis()
    axes.set_xlabel(unit)
    axes.set_title(title)
    if log:
        axes.set_xscale("log")
    for bar, number in zip(bars, numbers, strict=True):
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {number:,.3g}",
                  va="center", fontsize=8)  # fmt: skip
    return figure


def _s1_throughput(data: dict[str, Any]) -> Any:
    return _bars("1. Trivial commands: throughput", data["throughput"], "requests / s")


def _s1_latency_cdf(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    latencies: dict[str, list[float]] = data.get("latencies", {})
    if not latencies:
        return None
    figure, axes = plt.subplots(figsize=(8, 4.2))
    for name, values in latencies.items():
        ordered = sorted(v * 1000 for v in values)
        fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
        axes.plot(ordered, fractions, label=name)
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, one request at a time)")
    axes.set_ylabel("fraction of requests")
    axes.set_title("1. Trivial commands: latency CDF (sequential clients)")
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return figure


def _s2_scaling(data: dict[str, Any]) -> Any:
    figure = _bars("2. cpu_ms=20 commands: throughput", data["throughput"], "requests / s")
    axes = figure.axes[0]
    for label, rate in data.get("ideal", {}).items():
        axes.axvline(rate, linestyle="--", color="grey", linewidth=1)
        axes.text(
            rate,
            0.02,
            f" ideal {label}",
            fontsize=7,
            color="grey",
            rotation=90,
            va="bottom",
            transform=axes.get_xaxis_transform(),
        )
    return figure


def _s3_imports(data: dict[str, Any]) -> Any:
    return _bars(
        "3. Import-heavy work: total time (lower is better)",
        data["seconds"],
        "seconds",
        log=True,
    )


def _s5_memory(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.2))
    for label, samples in data["rss"].items():
        times = [t for t, _sample in samples]
        line = axes.plot(
            times, [s["total_rss_mb"] for _t, s in samples], label=f"{label}: RSS, workers + REPLs"
        )[0]
        with_pss = [(t, s["total_pss_mb"]) for t, s in samples if s.get("total_pss_mb") is not None]
        axes.plot(
            [t for t, _mb in with_pss],
            [mb for _t, mb in with_pss],
            color=line.get_color(),
            linestyle=":",
            label=f"{label}: PSS, workers + REPLs",
        )
        axes.plot(
            times,
            [s["repl_rss_mb"] for _t, s in samples],
            color=line.get_color(),
            linestyle="--",
            label=f"{label}: RSS, largest REPL",
        )
    axes.set_xlabel("seconds")
    axes.set_ylabel("MB")
    axes.set_title("5. Leaking commands: memory over time")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def _s6_streaming(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    samples = data["parent_rss"]
    figure, axes = plt.subplots(figsize=(8, 3.6))
    axes.plot([t for t, _mb in samples], [mb for _t, mb in samples])
    axes.set_xlabel("seconds")
    axes.set_ylabel("parent RSS (MB)")
    axes.set_ylim(bottom=0)
    axes.set_title("6. Streaming through imap_unordered: parent RSS")
    axes.grid(alpha=0.3)
    return figure


def _s7_rl(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    names = list(data["seconds"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 0.5 * len(names) + 1.6))
    for axes, values, title, unit in (
        (left, data["seconds"], "time (lower is better)", "seconds"),
        (right, data["useful"], "right results", "results"),
    ):
        numbers = [float(values[name]) for name in names]
        bars = axes.barh(names, numbers, color="#4f5bd5")
        axes.invert_yaxis()
        axes.set_title(f"7. RL-like workload: {title}", fontsize=10)
        axes.set_xlabel(unit)
        for bar, number in zip(bars, numbers, strict=True):
            axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {number:,.3g}",
                      va="center", fontsize=8)  # fmt: skip
    right.axvline(data["planned"], linestyle="--", color="grey", linewidth=1)
    label = f"results (planned: {data['planned']} with faults, dashed"
    if data.get("planned_nofaults"):
        right.axvline(data["planned_nofaults"], linestyle=":", color="grey", linewidth=1)
        label += f"; {data['planned_nofaults']} without, dotted"
    right.set_xlabel(label + ")", fontsize=8)
    right.set_yticklabels([])
    return figure
