"""Running external setup steps (elan, git, lake) so that failures are clear and retries are safe.

What every step gets here:

* one runner (`SetupTools.run`) that raises `LeanSetupError` naming the step, the command line, the
  exit status and the tail of the output, and says plainly when the cause is the network;
* a file lock per step (`step_lock`; ``flock`` locks die with their holder, so a killed process
  never leaves a stale lock behind), held by whoever does the work while the others wait;
* results built in a scratch directory and renamed into place only when complete
  (`staged_directory`): a directory that exists is finished, a half-done one is never trusted
  (LeanInteract issue #37 is two processes building the same directory at once);
* tool discovery: ``elan`` on PATH, in ``$ELAN_HOME/bin`` or ``~/.elan/bin``; ``lake`` on PATH or
  next to elan. Nothing is ever downloaded by hand: elan installs toolchains, git clones, lake
  builds and fetches Mathlib's cache.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from leanpool._errors import LeanSetupError
from leanpool._versions import toolchain_name, toolchain_version

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "CACHE_DIR_ENV_VAR",
    "ELAN_INSTALL_HINT",
    "SetupReporter",
    "SetupTools",
    "default_cache_dir",
    "discard_directory",
    "find_elan",
    "prepare_cache_dir",
    "read_json",
    "short_hash",
    "staged_directory",
    "step_lock",
    "write_json_atomic",
]

logger = logging.getLogger("leanpool")

CACHE_DIR_ENV_VAR = "LEANPOOL_CACHE_DIR"
ELAN_INSTALL_HINT = (
    "elan, the Lean toolchain manager, was not found (looked on PATH, in $ELAN_HOME/bin and in "
    "~/.elan/bin). leanpool does not download it for you. Install it with\n"
    "    curl https://raw.githubusercontent.com/leanprover/elan/master/elan-init.sh -sSf | sh\n"
    "(see https://lean-lang.org/install/), open a new shell so PATH includes ~/.elan/bin, "
    "and try again."
)
_CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by leanpool (https://bford.info/cachedir/).\n"
)
_OUTPUT_LINES_KEPT = 2000
_NETWORK_SIGNS = re.compile(
    r"could not resolve host|could not resolve hostname|unable to access|failed to connect|"
    r"connection timed out|connection refused|connection reset|network is unreachable|"
    r"temporary failure in name resolution|name or service not known|error sending request|"
    r"dns error|tls handshake|ssl_connect|couldn't connect to server|no route to host",
    re.IGNORECASE,
)
_NETWORK_HINT = (
    "Network problem: this step could not reach a server it needs (see the output below). "
    "Check the internet connection and proxy settings (HTTPS_PROXY), or point repl_git / the "
    "project URL at a local mirror. Nothing was left half-done: retrying is safe."
)


# --------------------------------------------------------------------------- cache directory
def default_cache_dir() -> Path:
    """``$LEANPOOL_CACHE_DIR`` if set, else the per-user cache directory (platformdirs)."""
    configured = os.environ.get(CACHE_DIR_ENV_VAR)
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("leanpool")).resolve()


def prepare_cache_dir(path: str | os.PathLike[str]) -> Path:
    """Create the cache directory and tag it, so backup tools skip it and `clear_cache` knows it."""
    root = Path(path).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    tag = root / "CACHEDIR.TAG"
    if not tag.exists():
        with contextlib.suppress(OSError):
            write_text_atomic(tag, _CACHEDIR_TAG)
    return root


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- files and directories
def write_text_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never a partial write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(scratch, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(scratch)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """The file's JSON, or None when it is missing or unreadable (then it is rebuilt)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def discard_directory(path: Path) -> None:
    """Remove a directory; it leaves its name at once (one rename), then is deleted."""
    if not path.exists():
        return
    trash = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """A scratch directory beside `final` that becomes `final` only if the block succeeds.

    Call it holding `final`'s lock. Scratch directories left by killed processes are removed
    first (only a holder of the same lock creates them, so none is in use). On failure the
    scratch directory is removed and `final` is left as it was.
    """
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{final.name}.tmp-"
    for stale in glob.glob(os.path.join(glob.escape(str(parent)), glob.escape(prefix) + "*")):
        shutil.rmtree(stale, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        scratch.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        yield scratch
        discard_directory(final)
        os.rename(scratch, final)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- progress
class SetupReporter:
    """Setup progress: with ``verbose``, a rich status line per step and its elapsed time (on
    stderr); otherwise only debug records on the ``leanpool`` logger."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self._console: Console | None = None
        if verbose:
            from rich.console import Console

            self._console = Console(stderr=True, highlight=False)

    def note(self, message: str) -> None:
        logger.debug("setup: %s", message)
        if self._console is not None:
            self._console.print(f"[dim]·[/dim] {message}")

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Callable[[str], None]]:
        """Report one step; the yielded callable shows the step's latest output line."""
        started = time.monotonic()
        logger.debug("setup: %s ...", title)
        console = self._console
        status = console.status(title) if console is not None else None
        if status is not None:
            status.start()

        def show(line: str) -> None:
            if status is not None and line.strip():
                status.update(f"{title} [dim]{line.strip()[:100]}[/dim]")

        try:
            yield show
        except BaseException:
            elapsed = time.monotonic() - started
            logger.debug("setup: %s failed after %.2fs", title, elapsed)
            if status is not None:
                status.stop()
            if console is not None:
                console.print(f"[red]✗[/red] {title} [dim]({elapsed:.1f}s)[/dim]")
            raise
        elapsed = time.monotonic() - started
        logger.debug("setup: %s done in %.2fs", title, elapsed)
        if status is not None:
            status.stop()
        if console is not None:
            console.print(f"[green]✓[/green] {title} [dim]({elapsed:.1f}s)[/dim]")


# --------------------------------------------------------------------------- locks
@contextlib.contextmanager
def step_lock(
    lock_path: Path, what: str, reporter: SetupReporter, timeout: float | None = None
) -> Iterator[None]:
    """Hold `lock_path` while doing `what`; say so when another process is doing it already."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        reporter.note(f"Waiting for another process to finish: {what}")
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LeanSetupError.from_step(
                what,
                hint=f"Another process held {lock_path} for more than {timeout}s "
                "(setup_timeout). It may be stuck; if no other setup is running, retry.",
            ) from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- tool discovery
def _elan_bin_candidates() -> list[Path]:
    candidates = []
    elan_home = os.environ.get("ELAN_HOME")
    if elan_home:
        candidates.append(Path(elan_home).expanduser() / "bin")
    candidates.append(Path.home() / ".elan" / "bin")
    return candidates


def find_elan(elan_path: str | os.PathLike[str] | None = None) -> Path | None:
    """elan's executable: `elan_path` if given, else PATH, ``$ELAN_HOME/bin``, ``~/.elan/bin``."""
    if elan_path is not None:
        found = shutil.which(str(elan_path))
        return Path(found).resolve() if found else None
    found = shutil.which("elan")
    if found:
        return Path(found)
    for directory in _elan_bin_candidates():
        candidate = directory / "elan"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class SetupTools:
    """The external programs of one setup, with its reporter, timeout and cache directory."""

    def __init__(
        self,
        cache_dir: Path,
        reporter: SetupReporter,
        *,
        lake_path: str | os.PathLike[str] = "lake",
        elan_path: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        elan_required: bool = True,
    ) -> None:
        self.cache_dir = cache_dir
        self.reporter = reporter
        self.lake_path = lake_path
        self.elan_path = elan_path
        self.timeout = timeout
        # False: without elan, lake runs as given (LeanInteract's way) instead of failing.
        self.elan_required = elan_required
        self._lake: Path | None = None
        self._installed_toolchains: set[str] = set()

    # ---------------------------------------------------------------- discovery
    def elan(self) -> Path:
        found = find_elan(self.elan_path)
        if found is None:
            where = f" at {self.elan_path}" if self.elan_path is not None else ""
            raise LeanSetupError.from_step(f"find elan{where}", hint=ELAN_INSTALL_HINT)
        return found

    def lake(self) -> Path:
        """Lake (normally elan's proxy, which runs the toolchain named in ``lean-toolchain``)."""
        if self._lake is None:
            self._lake = self._find_lake()
        return self._lake

    def _find_lake(self) -> Path:
        given = str(self.lake_path)
        found = shutil.which(given)
        if found:
            return Path(found).resolve() if os.sep in given else Path(found)
        if os.sep not in given:
            elan = find_elan(self.elan_path)
            directories = ([elan.parent] if elan else []) + _elan_bin_candidates()
            for directory in directories:
                candidate = directory / given
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return candidate
        hint = ELAN_INSTALL_HINT if find_elan(self.elan_path) is None else ""
        raise LeanSetupError.from_step(
            f"find lake ({given})",
            hint=f"Lean 4 build system executable not found at {given}. {hint}".strip(),
        )

    def base_env(self) -> dict[str, str]:
        """The environment of every step: ours, with elan's bin directory on PATH and git
        never prompting for credentials (a prompt with nobody to answer would hang setup)."""
        env = dict(os.environ)
        env["GIT_TERMINAL_PROMPT"] = "0"
        elan = find_elan(self.elan_path)
        if elan is not None:
            path = env.get("PATH", "")
            if str(elan.parent) not in path.split(os.pathsep):
                env["PATH"] = os.pathsep.join(p for p in (str(elan.parent), path) if p)
        return env

    # ---------------------------------------------------------------- running
    def run(
        self,
        step: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        cwd: Path | None = None,
        hint: str = "",
        report: bool = True,
    ) -> str:
        """Run one external step and return its output (stdout and stderr together).

        Raises `LeanSetupError` if it cannot start, exits non-zero or exceeds the timeout.
        `report=False` keeps quick queries (``git rev-parse``, ...) out of the progress display.
        """
        command = [str(arg) for arg in argv]
        logger.debug("setup: running %s (cwd=%s)", " ".join(command), cwd)
        reporting = self.reporter.step(step) if report else _silent_step()
        with reporting as show:
            try:
                proc = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=self.base_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a timeout ends the step's whole process group
                )
            except OSError as exc:
                raise LeanSetupError.from_step(
                    step, command, None, str(exc), hint=hint or "The program could not be started."
                ) from exc
            returncode, output = _wait_collecting(proc, show, self.timeout)
            if returncode is None:
                raise LeanSetupError.from_step(
                    step,
                    command,
                    None,
                    output,
                    hint=f"Timed out after {self.timeout}s (setup_timeout) and was killed.",
                )
            if returncode != 0:
                if _NETWORK_SIGNS.search(output):
                    hint = _NETWORK_HINT + (f" {hint}" if hint else "")
                raise LeanSetupError.from_step(step, command, returncode, output, hint=hint)
        return output

    def git(
        self, step: str, *args: str | os.PathLike[str], cwd: Path | None = None, report: bool = True
    ) -> str:
        return self.run(step, ["git", *args], cwd=cwd, report=report)

    def git_commit(self, repo: Path, rev: str) -> str | None:
        """The commit `rev` (tag, branch, commit) names in the repository `repo`, None if none."""
        try:
            out = self.git(
                f"Resolve revision {rev}",
                "-C",
                repo,
                "rev-parse",
                "--verify",
                "--quiet",
                f"{rev}^{{commit}}",
                report=False,
            )
        except LeanSetupError as exc:
            if exc.returncode == 1:  # --verify --quiet: no such revision, nothing else wrong
                return None
            raise
        words = out.split()
        return words[-1] if words else None

    def run_lake(self, step: str, *args: str, cwd: Path, hint: str = "") -> str:
        """Run lake in `cwd` after making sure the toolchain it names is installed (under a lock:
        elan's own on-demand install is not safe when several processes do it at once)."""
        toolchain_file = cwd / "lean-toolchain"
        if toolchain_file.is_file():
            self.ensure_toolchain(toolchain_file.read_text(encoding="utf-8"))
        return self.run(step, [self.lake(), *args], cwd=cwd, hint=hint)

    def ensure_toolchain(self, toolchain: str) -> None:
        """Install the Lean toolchain through elan unless it is installed already."""
        name = toolchain_name(toolchain)
        if name in self._installed_toolchains:
            return
        if not self.elan_required and find_elan(self.elan_path) is None:
            return  # a Lake the user manages (no elan): it runs whatever toolchain it is
        elan = self.elan()
        lock = self.cache_dir / "locks" / f"toolchain-{_safe_name(name)}.lock"
        with step_lock(
            lock, f"install Lean {toolchain_version(name)}", self.reporter, self.timeout
        ):
            listing = self.run(
                "List installed Lean toolchains (elan)", [elan, "toolchain", "list"], report=False
            )
            installed = {toolchain_name(line.split()[0]) for line in listing.splitlines() if line}
            if name not in installed:
                self.run(
                    f"Install Lean {toolchain_version(name)} (elan toolchain install)",
                    [elan, "toolchain", "install", name],
                )
        self._installed_toolchains.add(name)


@contextlib.contextmanager
def _silent_step() -> Iterator[Callable[[str], None]]:
    yield lambda line: None


def _safe_name(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text).strip("_") or "x"


def _wait_collecting(
    proc: subprocess.Popen[bytes], show: Callable[[str], None], timeout: float | None
) -> tuple[int | None, str]:
    """Wait for `proc`, keeping its output (the last lines) and showing each line as it comes.

    A reader thread drains the pipe so a chatty build never blocks on it; the main thread
    enforces the timeout. Returns (exit status or None on timeout, output).
    """
    lines: deque[str] = deque(maxlen=_OUTPUT_LINES_KEPT)
    assert proc.stdout is not None
    stdout = proc.stdout

    def drain() -> None:
        for raw in iter(stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            lines.append(line)
            show(line)

    reader = threading.Thread(target=drain, name="leanpool-setup-output", daemon=True)
    reader.start()
    returncode: int | None
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        returncode = None
    finally:
        if proc.poll() is None:  # timed out, or interrupted (KeyboardInterrupt): end it all
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # A grandchild may still hold the pipe open; its output is not worth waiting forever for.
    reader.join(timeout=5.0)
    if not reader.is_alive():
        stdout.close()
    return returncode, "".join(lines)
