"""LeanREPLConfig against fake elan/lake/git: the calls setup makes, caching, versions, pickling,
plugged-in commands, and a server started from a config made this way."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_tools import FakeTools, commit_id, use_fakes

from leanpool._config import DEFAULT_REPL_GIT_URL, LeanREPLConfig, ReplLaunch
from leanpool._errors import LeanSetupError
from leanpool._project import LocalProject

FRESH_SETUP = [
    "git clone",  # bare clone of the REPL repository
    "git rev-parse",  # the tag named like the Lean version
    "git show",  # its lean-toolchain
    "git clone",  # a private copy to build in
    "git checkout",
    "elan list",
    "elan install",
    "lake build",
    "lake env",
]


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    fakes = use_fakes(tmp_path, monkeypatch)
    fakes.add_repl_remote()
    return fakes


def make_project(root: Path, version: str) -> Path:
    root.mkdir(parents=True)
    (root / "lean-toolchain").write_text(f"leanprover/lean4:{version}\n")
    (root / "lakefile.lean").write_text("import Lake\nopen Lake DSL\npackage proj\n")
    return root


# --------------------------------------------------------------------------- fresh and cached
def test_fresh_setup_makes_the_right_calls_in_order(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    assert fakes.actions() == FRESH_SETUP
    clone, _, _, _, checkout, _, install, build, _ = fakes.calls()
    assert clone["args"][:3] == ["clone", "--bare", "--quiet"]
    assert clone["args"][3] == DEFAULT_REPL_GIT_URL
    assert checkout["args"][-1] == commit_id("repl", "refs/tags/v4.19.0", "v4.19.0")
    assert install["args"] == ["toolchain", "install", "leanprover/lean4:v4.19.0"]
    assert build["cwd"] != config.working_dir  # built in a scratch directory, then moved
    assert config.is_setup()
    assert config.lean_version == "v4.19.0"


def test_the_launch_starts_the_built_binary_in_lean_s_environment(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    launch = config.launch
    assert isinstance(launch, ReplLaunch)
    (binary,) = launch.argv
    assert Path(binary).is_file() and os.access(binary, os.X_OK)
    assert Path(binary).is_relative_to(launch.cwd)
    assert launch.cwd == config.working_dir == config.cache_repl_dir
    assert Path(launch.env["LEAN_SYSROOT"]).is_dir()
    assert launch.env["LEAN_PATH"].startswith(launch.cwd)
    assert launch.lean_version == "v4.19.0"
    assert "lake" not in Path(binary).name


def test_a_second_construction_runs_no_build_step(fakes: FakeTools) -> None:
    first = LeanREPLConfig(lean_version="v4.19.0")
    fakes.clear_log()
    started = time.monotonic()
    second = LeanREPLConfig(lean_version="v4.19.0")
    elapsed = time.monotonic() - started
    assert fakes.actions() == ["git rev-parse"]
    assert second.launch == first.launch
    assert 0.0 < second.setup_seconds <= elapsed  # the setup it ran, within the construction


def test_without_a_version_the_newest_release_is_used(fakes: FakeTools) -> None:
    config = LeanREPLConfig()
    assert config.lean_version == "v4.19.0"  # v4.21.0-rc3 is only a release candidate


def test_an_unsupported_version_fails_with_the_supported_ones(fakes: FakeTools) -> None:
    with pytest.raises(ValueError, match=r"v4\.99\.0 is not supported") as caught:
        LeanREPLConfig(lean_version="v4.99.0")
    assert "v4.18.0, v4.19.0-rc2, v4.19.0, v4.21.0-rc3" in str(caught.value)
    assert fakes.count("git fetch") == 0  # the clone was fresh: nothing newer to fetch
    assert fakes.count("lake build") == 0


def test_an_older_clone_is_fetched_before_a_version_is_refused(fakes: FakeTools) -> None:
    LeanREPLConfig(lean_version="v4.19.0")
    fakes.clear_log()
    with pytest.raises(ValueError, match="not supported"):
        LeanREPLConfig(lean_version="v4.99.0")
    assert fakes.count("git fetch") == 1


def test_a_tag_published_after_the_clone_is_fetched(fakes: FakeTools) -> None:
    LeanREPLConfig(lean_version="v4.19.0")
    fakes.add_repl_remote(versions=("v4.19.0", "v4.22.0"))
    config = LeanREPLConfig(lean_version="v4.22.0")
    assert config.lean_version == "v4.22.0"
    assert fakes.count("git fetch") == 1


def test_a_gap_is_served_by_a_bump_branch(fakes: FakeTools) -> None:
    fakes.add_repl_remote(versions=("v4.19.0",), branches={"bump_to_v4.20.0": "v4.20.0"})
    config = LeanREPLConfig(lean_version="v4.20.0")
    checkout = [c for c in fakes.calls("git") if c["action"] == "checkout"][-1]
    assert checkout["args"][-1] == commit_id("repl", "refs/heads/bump_to_v4.20.0", "v4.20.0")
    assert config.lean_version == "v4.20.0"


def test_explicit_repl_rev_is_used_and_its_toolchain_checked(fakes: FakeTools) -> None:
    fakes.add_repl_remote(versions=("v4.19.0",), branches={"experiment": "v4.18.0"})
    config = LeanREPLConfig(repl_rev="experiment")
    assert config.lean_version == "v4.18.0"
    with pytest.raises(ValueError, match="mismatch"):
        LeanREPLConfig(lean_version="v4.19.0", repl_rev="experiment")
    with pytest.raises(ValueError, match="not found"):
        LeanREPLConfig(lean_version="v4.19.0", repl_rev="no-such-branch")


def test_fork_style_tags_are_understood(fakes: FakeTools) -> None:
    fork = "https://github.com/augustepoiroux/repl"
    fakes.add_repl_remote(
        url=fork,
        versions=(),
        extra_tags={
            "v1.3.14_lean-toolchain-v4.20.0": "v4.20.0",
            "v1.3.18_lean-toolchain-v4.20.0": "v4.20.0",
        },
    )
    config = LeanREPLConfig(lean_version="v4.20.0", repl_git=fork)
    checkout = [c for c in fakes.calls("git") if c["action"] == "checkout"][-1]
    tag = "refs/tags/v1.3.18_lean-toolchain-v4.20.0"
    assert checkout["args"][-1] == commit_id("repl", tag, "v4.20.0")
    assert config.repo_name == "augustepoiroux/repl"
    pinned = LeanREPLConfig(lean_version="v4.20.0", repl_git=fork, repl_rev="v1.3.14")
    assert pinned.launch.argv != config.launch.argv  # another commit, another build


def test_force_pull_fetches_first(fakes: FakeTools) -> None:
    LeanREPLConfig(lean_version="v4.19.0")
    fakes.clear_log()
    LeanREPLConfig(lean_version="v4.19.0", force_pull_repl=True)
    assert fakes.actions()[0] == "git fetch"
    assert fakes.count("lake build") == 0


def test_available_versions_come_from_the_repository(fakes: FakeTools) -> None:
    fakes.add_repl_remote(versions=("v4.19.0", "v4.9.0"), branches={"bump_to_v4.12.0": "v4.12.0"})
    config = LeanREPLConfig(lean_version="v4.19.0")
    assert config.get_available_lean_versions() == ["v4.9.0", "v4.12.0", "v4.19.0"]


# --------------------------------------------------------------------------- projects
def test_a_project_fixes_the_version_and_the_working_directory(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = LocalProject(directory=make_project(tmp_path / "proj", "v4.18.0"), auto_build=False)
    config = LeanREPLConfig(project=project)
    assert config.lean_version == "v4.18.0"
    assert config.working_dir == config.launch.cwd == str(tmp_path / "proj")
    assert config.cache_repl_dir != config.working_dir
    assert config.launch.env["LEAN_PATH"].startswith(str(tmp_path / "proj"))
    env_call = fakes.calls("lake")[-1]
    assert env_call["action"] == "env" and env_call["cwd"] == str(tmp_path / "proj")


def test_a_version_mismatch_fails_before_anything_runs(fakes: FakeTools, tmp_path: Path) -> None:
    project = LocalProject(directory=make_project(tmp_path / "proj", "v4.18.0"), auto_build=False)
    with pytest.raises(ValueError, match=r"mismatch.*v4\.19\.0.*v4\.18\.0"):
        LeanREPLConfig(lean_version="v4.19.0", project=project)
    assert fakes.actions() == []


def test_lean_version_and_project_may_agree(fakes: FakeTools, tmp_path: Path) -> None:
    project = LocalProject(directory=make_project(tmp_path / "proj", "v4.18.0"), auto_build=False)
    assert LeanREPLConfig(lean_version="v4.18.0", project=project).lean_version == "v4.18.0"


# --------------------------------------------------------------------------- local REPL
def local_repl(root: Path, version: str) -> Path:
    root.mkdir(parents=True)
    (root / "lean-toolchain").write_text(f"leanprover/lean4:{version}\n")
    (root / "lakefile.toml").write_text('name = "REPL"\n')
    return root


def test_local_repl_is_built_in_place(fakes: FakeTools, tmp_path: Path) -> None:
    path = local_repl(tmp_path / "myrepl", "v4.19.0")
    config = LeanREPLConfig(local_repl_path=path)
    assert config.launch.argv == (str(path / ".lake" / "build" / "bin" / "repl"),)
    assert config.lean_version == "v4.19.0"
    assert fakes.count("git clone") == 0
    assert [c["cwd"] for c in fakes.calls("lake") if c["action"] == "build"] == [str(path)]


def test_local_repl_version_must_match(fakes: FakeTools, tmp_path: Path) -> None:
    path = local_repl(tmp_path / "myrepl", "v4.19.0")
    with pytest.raises(ValueError, match="mismatch"):
        LeanREPLConfig(lean_version="v4.18.0", local_repl_path=path)


def test_local_repl_must_exist_and_be_built(fakes: FakeTools, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        LeanREPLConfig(local_repl_path=tmp_path / "nowhere")
    path = local_repl(tmp_path / "myrepl", "v4.19.0")
    with pytest.raises(LeanSetupError, match="find the REPL binary"):
        LeanREPLConfig(local_repl_path=path, build_repl=False)


def test_build_repl_false_uses_a_cached_build_or_says_why_not(fakes: FakeTools) -> None:
    with pytest.raises(LeanSetupError, match="build_repl=False"):
        LeanREPLConfig(lean_version="v4.19.0", build_repl=False)
    LeanREPLConfig(lean_version="v4.19.0")
    assert LeanREPLConfig(lean_version="v4.19.0", build_repl=False).is_setup()


def test_cache_dir_argument_wins_over_the_environment(fakes: FakeTools, tmp_path: Path) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0", cache_dir=tmp_path / "elsewhere")
    assert Path(config.launch.argv[0]).is_relative_to(tmp_path / "elsewhere")
    assert not fakes.cache.joinpath("repl").exists()


# --------------------------------------------------------------------------- plain data
def test_pickling_round_trip_redoes_no_setup(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0", memory_hard_limit_mb=4096)
    fakes.clear_log()
    clone = pickle.loads(pickle.dumps(config))
    assert fakes.actions() == []
    assert clone.launch == config.launch
    assert clone.is_setup() and clone.working_dir == config.working_dir
    assert clone.memory_hard_limit_mb == 4096


def test_unpickling_in_another_process_runs_nothing(fakes: FakeTools, tmp_path: Path) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    fakes.clear_log()
    blob = tmp_path / "config.pickle"
    blob.write_bytes(pickle.dumps(config))
    code = (
        "import pickle, sys, json\n"
        f"config = pickle.loads(open({str(blob)!r}, 'rb').read())\n"
        "print(json.dumps([config.is_setup(), list(config.launch.argv)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert json.loads(out.stdout) == [True, list(config.launch.argv)]
    assert fakes.actions() == []


def test_parameters_mirror_leaninteract() -> None:
    positional = [
        name
        for name, p in inspect.signature(LeanREPLConfig).parameters.items()
        if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    assert positional == [
        "lean_version",
        "project",
        "repl_rev",
        "repl_git",
        "force_pull_repl",
        "cache_dir",
        "local_repl_path",
        "build_repl",
        "lake_path",
        "memory_hard_limit_mb",
        "enable_incremental_optimization",
        "enable_parallel_elaboration",
        "verbose",
    ]
    defaults = {name: p.default for name, p in inspect.signature(LeanREPLConfig).parameters.items()}
    assert defaults["repl_git"] == "https://github.com/leanprover-community/repl"
    assert defaults["repl_rev"] is None and defaults["lake_path"] == "lake"
    assert defaults["enable_incremental_optimization"] is True


def test_a_malformed_version_is_leaninteract_s_value_error(fakes: FakeTools) -> None:
    with pytest.raises(ValueError, match="Unable to parse Lean version format"):
        LeanREPLConfig(lean_version="4.19.0")


def test_verbose_setup_reports_each_step(
    fakes: FakeTools, capsys: pytest.CaptureFixture[str]
) -> None:
    LeanREPLConfig(lean_version="v4.19.0", verbose=True)
    err = capsys.readouterr().err
    for step in ("Clone the REPL repository", "Install Lean v4.19.0", "Build the REPL"):
        assert f"✓ {step}" in err


def test_quiet_setup_prints_nothing(fakes: FakeTools, capsys: pytest.CaptureFixture[str]) -> None:
    LeanREPLConfig(lean_version="v4.19.0")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# --------------------------------------------------------------------------- repl_cmd
def test_repl_cmd_skips_all_setup(fakes: FakeTools, tmp_path: Path) -> None:
    config = LeanREPLConfig(
        lean_version="v4.19.0", repl_cmd=["python3", "-m", "x"], repl_env={"A": "1"}
    )
    assert fakes.actions() == []
    assert Path(config.launch.argv[0]).is_absolute()
    assert config.launch.argv[1:] == ("-m", "x")
    assert config.launch.env == {"A": "1"}
    assert config.launch.cwd == os.getcwd() == config.working_dir
    assert config.launch.lean_version == "v4.19.0"
    assert config.cache_repl_dir is None


def test_repl_cmd_runs_in_the_project_directory(fakes: FakeTools, tmp_path: Path) -> None:
    project = LocalProject(directory=make_project(tmp_path / "proj", "v4.18.0"), auto_build=False)
    config = LeanREPLConfig(project=project, repl_cmd=[sys.executable])
    assert config.launch.cwd == str(tmp_path / "proj")
    assert config.lean_version == "v4.18.0"


@pytest.mark.parametrize("command", [[], ["/no/such/executable"], ["no-such-command-anywhere"]])
def test_repl_cmd_is_validated(command: list[str]) -> None:
    with pytest.raises(ValueError, match="repl_cmd"):
        LeanREPLConfig(repl_cmd=command)


# --------------------------------------------------------------------------- it runs
def test_the_launch_answers_a_request(fakes: FakeTools) -> None:
    launch = LeanREPLConfig(lean_version="v4.19.0").launch
    proc = subprocess.Popen(
        launch.argv,
        cwd=launch.cwd,
        env={**os.environ, **launch.env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, _ = proc.communicate(b'{"cmd": "#eval 1+1"}\n\n', timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    response = json.loads(out.decode().split("\n\n")[0])
    assert response["env"] == 0
    assert response["messages"][0]["data"] == "2"


def test_a_server_started_from_the_config_answers(fakes: FakeTools) -> None:
    from leanpool._server import LeanServer
    from leanpool.protocol import Command

    config = LeanREPLConfig(lean_version="v4.19.0")
    with LeanServer(config) as server:
        response = server.run(Command(cmd="#eval 1+1"), timeout=60)
    assert response.env == 0
    assert [m.data for m in response.messages] == ["2"]


def test_missing_elan_is_reported_before_anything_is_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fakes = use_fakes(tmp_path, monkeypatch, tools=("lake", "git"))
    fakes.add_repl_remote()
    monkeypatch.setenv("FAKE_TOOLS_FAIL", "git clone=network")  # offline, too
    with pytest.raises(LeanSetupError, match="elan") as caught:
        LeanREPLConfig(lean_version="v4.19.0", cache_dir=tmp_path / "cache")
    assert "Network" not in str(caught.value)
    assert fakes.actions() == []


# --------------------------------------------------------------------------- offline recipe
STAND_IN_REPL = """\
import json, sys
n = 0
buf = []
for line in sys.stdin:
    if line.strip():
        buf.append(line); continue
    if not buf:
        continue
    req, buf = json.loads("".join(buf)), []
    if "cmd" in req:
        out, n = {"env": n, "messages": [{"pos": {"line": 1, "column": 0}, "severity": "info",
                                          "data": json.dumps(req, sort_keys=True)}]}, n + 1
    else:
        out = {"message": "unsupported"}
    sys.stdout.write(json.dumps(out, indent=1) + "\\n\\n")
    sys.stdout.flush()
"""
FAKE_LAKE = """\
#!/bin/sh
case "$1" in
  env) shift; exec "$@" ;;
  --version) echo "fake lake"; exit 0 ;;
  build) exit 0 ;;
  *) exit 1 ;;
esac
"""


# `lake_path=env` pairs with build_repl=False in the recipe: `env build` is not a build.
@pytest.mark.parametrize(
    ("lake", "options"),
    [
        ("fake", {"enable_incremental_optimization": False, "enable_parallel_elaboration": False}),
        ("fake", {}),
        ("fake", {"build_repl": True}),
        ("env", {"enable_incremental_optimization": False, "enable_parallel_elaboration": False}),
        ("env", {}),
    ],
)
@pytest.mark.parametrize("toolchain", [None, "leanprover/lean4:v4.22.0"])
def test_leaninteract_s_offline_recipe_runs_without_elan_or_lean(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lake: str,
    options: dict[str, bool],
    toolchain: str | None,
) -> None:
    """A stand-in REPL at D/.lake/build/bin/repl and a `lake` that execs `lake env PROG` (or
    `env` itself) are all LeanInteract needs (with `local_repl_path` and `build_repl=False` its
    server.py only runs `lake env <repl>`); so must we."""
    use_fakes(tmp_path, monkeypatch, tools=())  # no elan, no lake, no git, no lean
    repl_dir = tmp_path / "D"
    binary = repl_dir / ".lake" / "build" / "bin" / "repl"
    binary.parent.mkdir(parents=True)
    binary.write_text(f"#!{sys.executable}\n{STAND_IN_REPL}")
    binary.chmod(0o755)
    if toolchain is not None:
        (repl_dir / "lean-toolchain").write_text(toolchain + "\n")
    fake_lake = tmp_path / "fakebin" / "lake"
    fake_lake.parent.mkdir()
    fake_lake.write_text(FAKE_LAKE)
    fake_lake.chmod(0o755)
    lake_path = str(fake_lake) if lake == "fake" else "/usr/bin/env"
    kwargs: dict[str, object] = {"build_repl": False, **options}
    config = LeanREPLConfig(
        local_repl_path=os.path.abspath(repl_dir), lake_path=lake_path, **kwargs
    )
    assert config.lean_version == ("v4.22.0" if toolchain else None)
    assert config.working_dir == config.cache_repl_dir == str(repl_dir)
    from leanpool.protocol import Command
    from leanpool.server import LeanServer

    with LeanServer(config) as server:
        first = server.run(Command(cmd="def x := 1"), timeout=5)
        second = server.run(Command(cmd="def y := x", env=first.env), timeout=5)
    assert (first.env, second.env) == (0, 1)
    sent = json.loads(second.messages[0].data)
    if options.get("enable_incremental_optimization") is False:
        assert sent == {"cmd": "def y := x", "env": 0}
    else:
        assert sent["incrementality"] is True
        assert sent["setOptions"] == [[["Elab", "async"], True]]


# --------------------------------------------------------------------------- on another machine
def test_on_a_machine_that_has_its_paths_the_config_is_used_as_is(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    fakes.clear_log()
    assert config.on_this_machine() is config
    assert fakes.actions() == []


def test_a_machine_without_the_repl_build_sets_it_up_again(fakes: FakeTools) -> None:
    """What a Ray node that lacks the driver's REPL build does with the driver's config: the
    same setup, from the same arguments (here the build is deleted to stand for that node)."""
    config = LeanREPLConfig(lean_version="v4.19.0")
    moved = pickle.loads(pickle.dumps(config))
    shutil.rmtree(config.working_dir)
    fakes.clear_log()
    here = moved.on_this_machine()
    assert here is not moved and moved.launch == config.launch  # the original is untouched
    assert "lake build" in fakes.actions()  # rebuilt here (Lean's environment is cached)
    assert Path(here.launch.argv[0]).is_file()
    assert here.lean_version == "v4.19.0"
    fakes.clear_log()
    assert here.on_this_machine() is here  # set up once: the next worker there finds it
    assert fakes.actions() == []


def test_a_repl_cmd_missing_on_this_machine_is_a_clear_error(tmp_path: Path) -> None:
    tool = tmp_path / "my-repl"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    config = LeanREPLConfig(repl_cmd=[str(tool)])
    tool.unlink()
    with pytest.raises(ValueError, match="same path on every machine"):
        config.on_this_machine()


def test_a_local_project_missing_on_this_machine_is_a_clear_error(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = LocalProject(directory=make_project(tmp_path / "proj", "v4.19.0"), auto_build=False)
    config = LeanREPLConfig(project=project)
    shutil.rmtree(tmp_path / "proj")
    with pytest.raises(ValueError, match="LocalProject must be at the same path"):
        config.on_this_machine()
