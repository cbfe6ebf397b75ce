"""Memory as Lean uses it: imported modules' pages shared between REPLs (the simulator maps one
file per module, as Lean maps each ``.olean``), limits that count private memory, and pool totals
that count shared pages once."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest

from leanpool import LeanMemoryError, LeanPool, LeanServer
from leanpool._memory import RssProbe, pss_bytes
from leanpool.protocol import Command, CommandResponse
from leanpool.testing import sim_config

MB = 1024 * 1024
HEADER = "import HeaderA"


def status_mb(pid: int) -> dict[str, float]:
    """RssAnon and RssFile of /proc/<pid>/status, in MB: the kernel's own split."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def eval_value(response: object) -> str:
    assert isinstance(response, CommandResponse), response
    return response.messages[0].data


@pytest.fixture
def module_dir(tmp_path: Path) -> str:
    return str(tmp_path / "modules")


def test_repls_importing_one_module_share_its_pages(module_dir: str) -> None:
    config = sim_config(imports={"HeaderA": (0, 200)}, module_dir=module_dir)
    servers = [LeanServer(config) for _ in range(3)]
    try:
        for server in servers:
            server.run(Command(cmd=f"{HEADER}\n#eval 1"))
        files = os.listdir(module_dir)
        assert "HeaderA-200mb.olean" in files  # made once, by the first REPL
        for server in servers:
            assert server.pid is not None
            kernel = status_mb(server.pid)
            assert kernel["RssFile"] >= 200 and kernel["RssAnon"] < 100, kernel
            resident, shared = RssProbe(server.pid).sample()
            assert abs((resident - shared) / MB - kernel["RssAnon"]) < 20  # statm's split agrees
            assert server.private_mb() < 100 and server.rss_mb() >= 200
            # PSS splits the 200 MB among the three REPLs that map it
            assert 200 / 3 - 10 < server.pss_mb() - server.private_mb() < 200 / 3 + 30
    finally:
        for server in servers:
            server.kill()


def test_the_private_fallback_pays_each_import_in_private_memory(module_dir: str) -> None:
    """Lean reads the modules into memory it allocates when mapping fails: nothing shared."""
    config = sim_config(imports={"HeaderA": (0, 200)}, module_dir=module_dir, private_imports=True)
    with LeanServer(config) as server:
        server.run(Command(cmd=f"{HEADER}\n#eval 1"))
        assert server.pid is not None
        assert status_mb(server.pid)["RssAnon"] >= 200
        assert server.private_mb() >= 200


def test_an_address_space_limit_below_the_modules_makes_the_mapping_fail(
    module_dir: str,
) -> None:
    """The address space counts every mapped module in full: under a limit too close to it
    the mapping fails, Lean's fallback copy does too, and the REPL dies with Lean's message."""
    config = sim_config(imports={"HeaderA": (0, 300)}, module_dir=module_dir)
    with LeanServer(config) as server:  # makes the module file, without a limit
        server.run(Command(cmd=f"{HEADER}\n#eval 1"))
    limited = sim_config(
        imports={"HeaderA": (0, 300)}, module_dir=module_dir, memory_hard_limit_mb=250
    )
    with LeanServer(limited) as server, pytest.raises(LeanMemoryError):
        server.run(Command(cmd=f"{HEADER}\n#eval 1"), timeout=30)


def test_four_repls_share_an_800_mb_header_under_a_400_mb_limit(module_dir: str) -> None:
    """The limit counts what each REPL adds: none is restarted for the shared header, and the
    pool's PSS total sees the header once, where the RSS total sees it four times."""
    config = sim_config(imports={"HeaderA": (50, 800)}, module_dir=module_dir)
    with LeanPool(config, 4, timeout=60, progress=False, memory_limit_mb=400) as pool:
        slow = [f"{HEADER}\n#eval {i} --!sim sleep_ms=300" for i in range(8)]
        assert [eval_value(r) for r in pool.map(slow)] == [str(i) for i in range(8)]
        commands = [f"{HEADER}\n#eval {i}" for i in range(40)]
        assert [eval_value(r) for r in pool.map(commands)] == [str(i) for i in range(40)]
        # A worker reads its REPL's PSS at most once a second (sooner when its RSS moves), and
        # another REPL mapping the header later lowers it without a move: read every worker's
        # again, after all four imported.
        time.sleep(1.1)
        before = {w["slot"]: w["served"] for w in pool.stats().workers}
        for _attempt in range(10):
            pool.map([f"#eval {i} --!sim sleep_ms=100" for i in range(8)])
            stats = pool.stats()
            if all(w["served"] > before[w["slot"]] for w in stats.workers):
                break
        assert stats.restarts == {} and stats.recycles == {}
        assert stats.header_imports == 4  # one per REPL: each worker took some of them
        assert all(w["private_mb"] < 100 and w["rss_mb"] > 800 for w in stats.workers)
        assert stats.memory["rss_mb"] > 4 * 800
        assert 800 < stats.memory["pss_mb"] < 800 + 4 * 100  # the header counted once
        assert stats.memory["private_mb"] < 4 * 100
        # Growth of its own past the limit still ends a REPL.
        with pytest.raises(LeanMemoryError, match="private memory reached"):
            pool.run("#eval 1 --!sim rss_mb=500")
        assert eval_value(pool.run(f"{HEADER}\n#eval 77")) == "77"


def test_counting_the_whole_rss_restarts_repls_for_the_shared_header(module_dir: str) -> None:
    """The old accounting, still available: `memory_metric="rss"` counts shared pages too."""
    config = sim_config(imports={"HeaderA": (0, 300)}, module_dir=module_dir)
    with (
        LeanPool(
            config, 1, timeout=60, progress=False, memory_limit_mb=200, memory_metric="rss"
        ) as pool,
        pytest.raises(LeanMemoryError, match="RSS reached"),
    ):
        pool.run(f"{HEADER}\n#eval 1")


def test_a_wrong_memory_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="memory_metric must be one of"):
        LeanServer(sim_config(), memory_metric="vms")  # type: ignore[arg-type]


def test_pss_of_a_process_that_is_gone_is_zero() -> None:
    assert pss_bytes(2**22 + 12345) == 0
    assert pss_bytes(os.getpid()) > 0


def test_the_pool_warns_when_the_address_space_limit_is_too_close_to_the_oleans(
    tmp_path: Path,
) -> None:
    lean_path = tmp_path / "lib"
    lean_path.mkdir()
    (lean_path / "Big.olean").write_bytes(b"\0" * (600 * MB))
    config = sim_config(memory_hard_limit_mb=1200, repl_env={"LEAN_PATH": str(lean_path)})
    with pytest.warns(RuntimeWarning, match="memory_hard_limit_mb=1200 is too close to the 600 MB"):
        LeanPool(config, 1, progress=False).shutdown()
    roomy = sim_config(memory_hard_limit_mb=4000, repl_env={"LEAN_PATH": str(lean_path)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        LeanPool(roomy, 1, progress=False).shutdown()
    # No .olean file on LEAN_PATH (the simulator, a config without one): nothing to compare.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        LeanPool(sim_config(memory_hard_limit_mb=400), 1, progress=False).shutdown()
    # A cgroup limit counts resident pages, not address space: nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        LeanPool(config, 1, progress=False, memory_backend="cgroup").shutdown()


def test_a_worker_reads_pss_again_when_its_rss_moved(module_dir: str) -> None:
    """PSS is read at most once a second, but an import that maps a header moves the RSS: the
    report after it shows the header, not the PSS from before."""
    config = sim_config(imports={"HeaderA": (0, 300)}, module_dir=module_dir)
    with LeanPool(config, 1, timeout=60, progress=False) as pool:
        pool.run("#eval 1")
        pool.run(f"{HEADER}\n#eval 2")  # within a second of the first report
        (worker,) = pool.stats().workers
        assert worker["rss_mb"] > 300 and worker["pss_mb"] > 300, worker
