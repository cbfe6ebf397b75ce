"""The Kimina Lean Server and its client, installed from PyPI and run offline on the simulator.

``python -m bench.kimina client`` (or ``server``) prints the Python of a virtual environment
holding the Kimina client (or server), creating it the first time; exit status 3 and the reason
when it cannot be had. The tests of `leanpool serve` and scenario 10 of the benchmarks use it.

* **Client**: ``kimina-client`` 0.2.1 fails to import on Python 3.11 (a pydantic error about
  ``typing.TypedDict``) and imports on 3.12 once ``pygments`` (an undeclared dependency) is
  installed too; so the environment is made with a Python 3.12 (pyenv's, or ``python3.12`` on
  PATH).
* **Server**: ``kimina-ast-server`` 2.1.3 is the Kimina server published on PyPI (the
  repository's 2.0 server with AST endpoints added); FastAPI is pinned to 0.116.1, the version
  its code runs with (newer FastAPI refuses ``FastAPI(logger=...)``). It runs offline as
  `Workspace` arranges: the simulator behind a small executable wrapper where the server expects
  the REPL binary, a stand-in ``lake`` that runs ``lake env PROG`` as ``PROG``, an empty
  ``mathlib4`` directory (the REPLs' working directory), a stand-in ``ast-export`` (checked for at
  start-up only), and a ``prisma`` stand-in (the real one needs engines downloaded at start-up;
  no database is used).

Environments live in ``build/kimina/`` (git-ignored; ``$LEANPOOL_KIMINA_VENVS`` to put them
elsewhere) and are reused while their requirements are unchanged.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENVS = Path(os.environ.get("LEANPOOL_KIMINA_VENVS", ROOT / "build" / "kimina"))
CLIENT_REQUIREMENTS = ("kimina-client==0.2.1", "pygments")
SERVER_REQUIREMENTS = ("kimina-ast-server==2.1.3", "fastapi==0.116.1")
_IMPORT_CHECKS = {"client": "import kimina_client", "server": "import fastapi, server"}

_FAKE_LAKE = """#!/bin/sh
# Stand-in for lake: `lake env PROG ARGS...` runs PROG ARGS...
if [ "$1" = "env" ] && [ -n "$2" ]; then shift; exec "$@"; fi
echo "stand-in lake: unsupported arguments: $*" >&2
exit 1
"""
_PRISMA_SHIM = '''"""Stand-in for prisma: the Kimina server imports it; no database is used."""


class Prisma:
    def __init__(self, *args, **kwargs):
        pass

    async def connect(self):
        raise RuntimeError("no database here (stand-in prisma)")

    async def disconnect(self):
        pass
'''


def find_python312() -> Path | None:
    """The newest Python 3.12 here: pyenv's versions, then ``python3.12`` on PATH."""
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv"), "/root/.pyenv"]
    found: list[Path] = []
    for root in dict.fromkeys(r for r in roots if r):
        found += [
            Path(p) for p in glob.glob(os.path.join(root, "versions", "3.12*", "bin", "python"))
        ]
    found = [p for p in found if os.access(p, os.X_OK)]
    if found:
        return sorted(
            found, key=lambda p: [int(x) for x in p.parts[-3].split(".")[:3] if x.isdigit()]
        )[-1]
    which = shutil.which("python3.12")
    return Path(which) if which else None


def ensure_venv(kind: str) -> tuple[Path | None, str]:
    """(the Python of the ``kind`` environment, "") or (None, why it cannot be had)."""
    requirements = CLIENT_REQUIREMENTS if kind == "client" else SERVER_REQUIREMENTS
    venv = VENVS / f"{kind}-3.12"
    python = venv / "bin" / "python"
    stamp = venv / ".leanpool-requirements"
    wanted = "\n".join(requirements)
    VENVS.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(VENVS / f".{kind}.lock"), timeout=900):
        if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
            return python, ""
        base = find_python312()
        if base is None:
            return None, (
                "no Python 3.12 here (pyenv or python3.12 on PATH): kimina-client 0.2.1 does not "
                "import on 3.11, and the Kimina server is run on 3.12 too"
            )
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [str(base), "-m", "venv", str(venv)],
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *requirements],
        ]  # fmt: skip
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900, check=False)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, f"{shlex.join(step[:4])} ... failed: {' | '.join(tail)}"
        check = subprocess.run(
            [str(python), "-c", _IMPORT_CHECKS[kind]],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=VENVS,
        )
        if check.returncode != 0:
            tail = check.stderr.strip().splitlines()[-1:] or ["?"]
            return None, f"{' '.join(requirements)} installed but does not import: {tail[0]}"
        stamp.write_text(wanted)
        return python, ""


def cached_venv(kind: str) -> Path | None:
    """The environment's Python if it was already made (never installs)."""
    requirements = CLIENT_REQUIREMENTS if kind == "client" else SERVER_REQUIREMENTS
    venv = VENVS / f"{kind}-3.12"
    stamp = venv / ".leanpool-requirements"
    if stamp.is_file() and stamp.read_text() == "\n".join(requirements):
        return venv / "bin" / "python"
    return None


class Workspace:
    """What the Kimina server needs to run offline on the simulator (module docstring)."""

    def __init__(self, folder: Path, repl_command: list[str]) -> None:
        self.folder = folder.resolve()
        repl = self.folder / "repl" / ".lake" / "build" / "bin" / "repl"
        ast_export = self.folder / "ast_export" / ".lake" / "build" / "bin" / "ast-export"
        for path in (repl, ast_export):
            path.parent.mkdir(parents=True, exist_ok=True)
        repl.write_text(f"#!/bin/sh\nexec {shlex.join(repl_command)}\n", encoding="utf-8")
        ast_export.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        (self.folder / "mathlib4").mkdir(exist_ok=True)
        lake = self.folder / "bin" / "lake"
        lake.parent.mkdir(exist_ok=True)
        lake.write_text(_FAKE_LAKE, encoding="utf-8")
        shim = self.folder / "shim" / "prisma"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text(_PRISMA_SHIM, encoding="utf-8")
        for path in (repl, ast_export, lake):
            path.chmod(0o755)

    def environment(self, port: int, repls: int) -> dict[str, str]:
        env = dict(os.environ)
        for name in list(env):
            if name.startswith(("LEAN_SERVER_", "VIRTUAL_ENV")):
                del env[name]
        env.update(
            PATH=f"{self.folder / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=str(self.folder / "shim"),
            LEAN_SERVER_WORKSPACE=str(self.folder),
            LEAN_SERVER_HOST="127.0.0.1",
            LEAN_SERVER_PORT=str(port),
            LEAN_SERVER_MAX_REPLS=str(repls),
            LEAN_SERVER_ENVIRONMENT="prod",
            LEAN_SERVER_LOG_LEVEL="WARNING",
        )
        return env


def wait_healthy(url: str, process: subprocess.Popen[Any], seconds: float) -> None:
    """Until ``GET url/health`` answers ``{"status": "ok"}``; RuntimeError if the process ends or
    the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as answer,
        ):
            if json.loads(answer.read()).get("status") == "ok":
                return
        time.sleep(0.1)
    raise RuntimeError(f"no healthy answer from {url} within {seconds:g} s")


@contextlib.contextmanager
def kimina_server(
    python: Path, workspace: Workspace, port: int, repls: int, log: Path
) -> Iterator[str]:
    """The Kimina server, running; its URL. Stopped with SIGTERM at the end (its REPLs, each in a
    session of its own, are checked for and killed if any outlived it)."""
    import psutil

    script = python.parent / "kimina-ast-server"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [str(script)],
            cwd=workspace.folder,
            env=workspace.environment(port, repls),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    children: set[int] = set()
    try:
        wait_healthy(url, process, 60)
        yield url
    finally:
        with contextlib.suppress(psutil.Error):
            children = {p.pid for p in psutil.Process(process.pid).children(recursive=True)}
        stop(process)
        for pid in children:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()


def stop(process: subprocess.Popen[Any], grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ("client", "server"):
        print("usage: python -m bench.kimina client|server", file=sys.stderr)
        return 2
    python, why = ensure_venv(args[0])
    if python is None:
        print(why)
        return 3
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
