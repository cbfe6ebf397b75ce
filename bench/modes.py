"""How big each scenario is in each mode: `smoke` (seconds, for the test suite), `quick` (the
default of `make bench`, under 10 minutes on 2 cores) and `full` (larger, steadier numbers)."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Sizes:
    deadline_s: float  # per measured variant: what is unanswered by then counts as lost
    repeats: int  # throughput measurements of scenarios 1 and 2: best of this many, interleaved
    # 1. client overhead
    trivial_requests: int  # per sequential client (latency)
    throughput_requests: int  # raw pipe loop and pool streaming (throughput)
    pool_sequential_requests: int
    # 2. scaling
    cpu_requests: int
    cpu_ms: int
    # 3. import-heavy work
    import_commands: int
    import_commands_slow: int  # measured for the per-command baselines (then scaled, if fewer)
    import_ms: int
    import_mb: int
    import_body_cpu_ms: int
    # 4. faults
    fault_requests: int
    fault_repeats: int  # best of this many interleaved runs of each variant
    fault_cpu_ms: int
    crash_rate: float
    recovery_repeats: int
    hang_timeout_s: float
    # 5. memory
    leak_requests: int
    leak_mb: int
    leak_cpu_ms: int
    leak_memory_limit_mb: int
    leak_max_tasks: int
    # 6. streaming
    stream_requests: int
    # 7. RL-like workload
    rl_episodes: int
    rl_steps: int
    rl_timeout_s: float
    rl_in_flight: int
    rl_async_probe: bool
    # 8. parsing responses
    json_repeats: int  # interleaved parses of the 1 MB response, per parser (best kept)
    json_deep_levels: int  # nesting of the deep response
    # 9. the verdict policy
    verdict_proofs: int = 200
    verdict_cpu_ms: int = 20
    # 10. leanpool serve against the Kimina server
    kimina_trivial: int = 2000  # trivial checks per run (best of `repeats`)
    kimina_mixed: int = 120  # proofs of the mixed load
    kimina_import_ms: int = 1000  # importing Mathlib, in the simulator
    kimina_import_mb: int = 100
    kimina_cpu_ms: int = 20  # each proof of the mixed load
    kimina_install: bool = True  # make the Python 3.12 environments when missing


SIZES: dict[str, Sizes] = {
    "smoke": Sizes(
        deadline_s=120,
        repeats=1,
        throughput_requests=100,
        trivial_requests=30,
        pool_sequential_requests=20,
        cpu_requests=12,
        cpu_ms=2,
        import_commands=8,
        import_commands_slow=8,
        import_ms=30,
        import_mb=8,
        import_body_cpu_ms=1,
        fault_requests=20,
        fault_repeats=1,
        fault_cpu_ms=5,
        crash_rate=0.1,
        recovery_repeats=1,
        hang_timeout_s=0.5,
        leak_requests=40,
        leak_mb=1,
        leak_cpu_ms=1,
        leak_memory_limit_mb=150,
        leak_max_tasks=15,
        stream_requests=500,
        rl_episodes=4,
        rl_steps=6,
        rl_timeout_s=3.0,
        rl_in_flight=8,
        rl_async_probe=False,
        json_repeats=5,
        json_deep_levels=20_000,
        verdict_proofs=12,
        verdict_cpu_ms=2,
        kimina_trivial=48,
        kimina_mixed=16,
        kimina_import_ms=30,
        kimina_import_mb=8,
        kimina_cpu_ms=2,
        kimina_install=False,
    ),
    "quick": Sizes(
        deadline_s=600,
        repeats=3,
        throughput_requests=20_000,
        trivial_requests=3000,
        pool_sequential_requests=1000,
        cpu_requests=200,
        cpu_ms=20,
        import_commands=200,
        import_commands_slow=32,
        import_ms=1500,
        import_mb=800,
        import_body_cpu_ms=20,
        fault_requests=200,
        fault_repeats=2,
        fault_cpu_ms=100,
        crash_rate=0.02,
        recovery_repeats=5,
        hang_timeout_s=1.0,
        leak_requests=1000,
        leak_mb=4,
        leak_cpu_ms=5,
        leak_memory_limit_mb=400,
        leak_max_tasks=150,
        stream_requests=100_000,
        rl_episodes=24,
        rl_steps=24,
        rl_timeout_s=5.0,
        rl_in_flight=64,
        rl_async_probe=True,
        json_repeats=21,
        json_deep_levels=100_000,
    ),
    "full": Sizes(
        deadline_s=1800,
        repeats=5,
        throughput_requests=50_000,
        trivial_requests=10_000,
        pool_sequential_requests=3000,
        cpu_requests=500,
        cpu_ms=20,
        import_commands=200,
        import_commands_slow=200,
        import_ms=1500,
        import_mb=800,
        import_body_cpu_ms=20,
        fault_requests=600,
        fault_repeats=3,
        fault_cpu_ms=100,
        crash_rate=0.02,
        recovery_repeats=10,
        hang_timeout_s=1.0,
        leak_requests=3000,
        leak_mb=4,
        leak_cpu_ms=5,
        leak_memory_limit_mb=400,
        leak_max_tasks=150,
        stream_requests=100_000,
        rl_episodes=64,
        rl_steps=32,
        rl_timeout_s=5.0,
        rl_in_flight=64,
        rl_async_probe=True,
        json_repeats=51,
        json_deep_levels=100_000,
        kimina_trivial=5000,
        kimina_mixed=300,
    ),
}
