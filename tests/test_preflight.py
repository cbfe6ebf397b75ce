"""The preflight (leanpool._preflight): each check on fake projects in tmp dirs, through
`preflight(config)` with configs built by the fake elan/lake/git, `enforce_preflight` (what the
pool runs at start) and `check_project` (what `leanpool doctor --project` shows)."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
import warnings
from pathlib import Path

import pytest
from fake_tools import MATHLIB_URL, FakeTools, use_fakes

from leanpool import LeanPool
from leanpool._config import LeanREPLConfig
from leanpool._errors import LeanSetupError
from leanpool._preflight import (
    PREFLIGHT_ENV,
    PreflightError,
    PreflightWarning,
    Problem,
    check_project,
    enforce_preflight,
    git_head,
    preflight,
    read_lakefile,
    read_manifest,
)
from leanpool._project import LocalProject, TempRequireProject
from leanpool.testing import sim_config

FOO_URL = "https://github.com/acme/foo"
BAR_URL = "https://github.com/acme/bar"
SHA_A = "a" * 40
SHA_B = "b" * 40


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    monkeypatch.delenv(PREFLIGHT_ENV, raising=False)
    fakes = use_fakes(tmp_path / "fakes", monkeypatch)
    fakes.add_repl_remote()
    return fakes


def make_project(
    root: Path,
    version: str = "v4.19.0",
    *,
    library: str | None = "Proj",
    requires: dict[str, str] | None = None,
    manifest: dict[str, str] | None = None,
    built: bool = True,
    packages_built: tuple[str, ...] | None = None,
    cloned: tuple[str, ...] | None = None,
) -> Path:
    """A Lake project: `requires` name -> url in its lakefile (at "main"), `manifest` name ->
    url in lake-manifest.json (default: the requires; at SHA_A), packages cloned (default: all
    in the manifest) and built (default: all cloned), its own library built if `built`."""
    requires = dict(requires or {})
    manifest = dict(requires if manifest is None else manifest)
    root.mkdir(parents=True)
    (root / "lean-toolchain").write_text(f"leanprover/lean4:{version}\n")
    lines = ["import Lake", "open Lake DSL", "", "package proj", ""]
    lines += [f'require «{name}» from git "{url}" @ "main"' for name, url in requires.items()]
    if library:
        lines += ["", "@[default_target]", f"lean_lib {library}"]
    (root / "lakefile.lean").write_text("\n".join(lines) + "\n")
    entries = [
        {
            "type": "git",
            "url": url,
            "rev": SHA_A,
            "name": name,
            "inputRev": "main",
            "inherited": False,
            "subDir": None,
            "scope": "",
            "manifestFile": "lake-manifest.json",
            "configFile": "lakefile.lean",
        }
        for name, url in manifest.items()
    ]
    data = {
        "version": 7,
        "packagesDir": ".lake/packages",
        "packages": entries,
        "name": "proj",
        "lakeDir": ".lake",
    }
    (root / "lake-manifest.json").write_text(json.dumps(data, indent=1))
    for name in manifest if cloned is None else cloned:
        package = root / ".lake" / "packages" / name
        (package / ".git").mkdir(parents=True)
        (package / ".git" / "HEAD").write_text(SHA_A + "\n")
        if packages_built is None or name in packages_built:
            olean_dir(package).mkdir(parents=True)
            (olean_dir(package) / f"{name.capitalize()}.olean").write_bytes(b"olean")
    if built and library:
        olean_dir(root).mkdir(parents=True)
        (olean_dir(root) / f"{library}.olean").write_bytes(b"olean")
    return root


def olean_dir(package: Path) -> Path:
    return package / ".lake" / "build" / "lib" / "lean"


def project_config(directory: Path) -> LeanREPLConfig:
    """A config for the project, set up through the fake tools (the REPL built for its Lean)."""
    return LeanREPLConfig(project=LocalProject(directory=directory, auto_build=False))


def checks(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.severity, p.check) for p in problems]


# ------------------------------------------------------------------------ nothing to report
def test_a_simulator_config_has_nothing_to_check() -> None:
    config = sim_config()
    assert preflight(config) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert enforce_preflight(config) == []


def test_a_repl_cmd_is_taken_as_given_even_with_an_unbuilt_project(tmp_path: Path) -> None:
    """The simulator (any repl_cmd) reads no .olean file: its project is not checked."""
    project = make_project(tmp_path / "p", built=False)
    config = sim_config(project=LocalProject(directory=project, auto_build=False))
    assert config.repl_cmd is not None and preflight(config) == []


def test_a_config_without_project_checks_its_repl(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    assert preflight(config) == [] and config.preflight() == []


def test_a_built_project_in_step_with_its_manifest_passes(fakes: FakeTools, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL, "bar": BAR_URL})
    config = project_config(project)
    fakes.clear_log()
    assert preflight(config) == []
    assert fakes.calls() == []  # files only: no git, lake or elan


def test_lake_build_through_a_local_project_satisfies_the_build_check(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "p", built=False)
    assert checks(check_project(project)) == [("error", "project-build")]
    config = LeanREPLConfig(project=LocalProject(directory=project))  # runs (fake) lake build
    assert preflight(config) == []


def test_a_mathlib_project_set_up_by_lake_update_cache_get_and_build(fakes: FakeTools) -> None:
    project = TempRequireProject(lean_version="v4.19.0", require="mathlib", verbose=False)
    config = LeanREPLConfig(project=project)
    assert preflight(config) == []
    assert read_lakefile(Path(project.get_directory())).requires[0].git == MATHLIB_URL


# ------------------------------------------------------------------------ REPL version
def test_a_project_whose_lean_toolchain_differs_from_the_repl_s_is_an_error(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "p", "v4.19.0")
    config = project_config(project)
    assert config.cache_repl_dir is not None
    assert (Path(config.cache_repl_dir) / "lean-toolchain").read_text().strip().endswith("v4.19.0")
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.21.0-rc3\n")  # bumped since
    (problem,) = preflight(config)
    assert (problem.severity, problem.check) == ("error", "repl-version")
    assert "v4.19.0" in problem.what and "v4.21.0-rc3" in problem.what
    assert ".olean" in problem.why and "leanpool setup --project" in problem.action
    with pytest.raises(PreflightError) as raised:
        enforce_preflight(config)
    assert isinstance(raised.value, LeanSetupError) and isinstance(raised.value, RuntimeError)
    assert raised.value.problems == (problem,)
    assert "v4.21.0-rc3" in str(raised.value) and PREFLIGHT_ENV in str(raised.value)


def test_a_repl_checkout_for_another_lean_is_an_error(fakes: FakeTools, tmp_path: Path) -> None:
    """A local REPL whose lean-toolchain moved on after it was built for the project."""
    repl = tmp_path / "repl"
    repl.mkdir()
    (repl / "lean-toolchain").write_text("leanprover/lean4:v4.19.0\n")
    (repl / "lakefile.toml").write_text('name = "REPL"\ndefaultTargets = ["repl"]\n')
    project = make_project(tmp_path / "p", "v4.19.0")
    config = LeanREPLConfig(
        project=LocalProject(directory=project, auto_build=False), local_repl_path=repl
    )
    assert preflight(config) == []
    (repl / "lean-toolchain").write_text("leanprover/lean4:v4.18.0\n")
    assert checks(preflight(config)) == [("error", "repl-version")]


def test_a_sysroot_of_another_lean_is_an_error(fakes: FakeTools) -> None:
    config = LeanREPLConfig(lean_version="v4.19.0")
    assert config.launch.env["LEAN_SYSROOT"].endswith("leanprover--lean4---v4.19.0")
    elsewhere = "/opt/elan/toolchains/leanprover--lean4---v4.18.0"
    moved = config.with_launch(
        dataclasses.replace(config.launch, env={**config.launch.env, "LEAN_SYSROOT": elsewhere})
    )
    (problem,) = preflight(moved)
    assert problem.check == "repl-version" and "v4.18.0" in problem.what


def test_a_toolchain_elan_has_not_installed_is_a_warning(fakes: FakeTools, tmp_path: Path) -> None:
    LeanREPLConfig(lean_version="v4.19.0")  # elan installs v4.19.0
    project = make_project(tmp_path / "p", "v4.18.0")
    (problem,) = check_project(project)
    assert (problem.severity, problem.check) == ("warn", "toolchain")
    assert "elan toolchain install leanprover/lean4:v4.18.0" in problem.action
    assert check_project(make_project(tmp_path / "q", "v4.19.0")) == []


def test_a_project_without_lean_toolchain_is_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "lean-toolchain").unlink()
    assert checks(check_project(project)) == [("warn", "toolchain")]


# ------------------------------------------------------------------------ builds
def test_a_project_without_its_build_is_an_error(fakes: FakeTools, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", built=False)
    config = project_config(project)
    (problem,) = preflight(config)
    assert (problem.severity, problem.check) == ("error", "project-build")
    assert "Proj" in problem.what and "lake build" in problem.action
    with pytest.raises(PreflightError, match="not built"):
        enforce_preflight(config)


def test_a_pool_does_not_start_on_a_project_its_repl_cannot_serve(
    fakes: FakeTools, tmp_path: Path
) -> None:
    """The preflight runs when a pool starts, before any worker: a clear error, no hang."""
    project = make_project(tmp_path / "p", "v4.19.0")
    config = project_config(project)
    (project / "lean-toolchain").write_text("leanprover/lean4:v4.21.0-rc3\n")
    with pytest.raises(PreflightError, match=r"v4\.21\.0-rc3"):
        LeanPool(config, 1)


def test_a_project_without_libraries_needs_no_build_of_its_own(tmp_path: Path) -> None:
    assert check_project(make_project(tmp_path / "p", library=None, built=False)) == []


def test_dependencies_not_built_at_all_are_an_error(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p", requires={"foo": FOO_URL, "bar": BAR_URL}, packages_built=()
    )
    (problem,) = check_project(project)
    assert (problem.severity, problem.check) == ("error", "package-build")
    assert "foo" in problem.what and "bar" in problem.what


def test_one_unbuilt_dependency_among_built_ones_is_a_warning(tmp_path: Path) -> None:
    project = make_project(
        tmp_path / "p", requires={"foo": FOO_URL, "bar": BAR_URL}, packages_built=("foo",)
    )
    (problem,) = check_project(project)
    assert (problem.severity, problem.check) == ("warn", "package-build")
    assert "bar" in problem.what


def test_a_package_that_is_not_cloned_is_an_error(fakes: FakeTools, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL, "bar": BAR_URL})
    config = project_config(project)
    assert preflight(config) == []
    for name in ("foo", "bar"):
        shutil.rmtree(project / ".lake" / "packages" / name)
    problems = preflight(config)
    assert checks(problems) == [("error", "package-build")] * 2
    assert "lake clones it" in problems[0].why


def test_a_missing_packages_directory_is_an_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL}, cloned=())
    (problem,) = check_project(project)
    assert problem.check == "package-build" and "does not exist" in problem.what


# ------------------------------------------------------------------------ manifest / network
def test_a_manifest_lacking_a_required_package_is_a_warning(
    fakes: FakeTools, tmp_path: Path
) -> None:
    project = make_project(
        tmp_path / "p", requires={"foo": FOO_URL, "bar": BAR_URL}, manifest={"foo": FOO_URL}
    )
    config = project_config(project)
    (problem,) = preflight(config)
    assert (problem.severity, problem.check) == ("warn", "manifest")
    assert "bar" in problem.what and "lake update bar" in problem.action
    with pytest.warns(PreflightWarning, match="bar"):
        assert enforce_preflight(config) == [problem]


def test_no_manifest_with_requires_is_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL})
    (project / "lake-manifest.json").unlink()
    problems = check_project(project)
    assert checks(problems) == [("warn", "manifest")]
    assert "full `lake update`" in problems[0].why


def test_no_manifest_and_no_requires_is_fine(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "lake-manifest.json").unlink()
    assert check_project(project) == []


def test_a_manifest_out_of_date_with_the_lakefile_is_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL})
    lakefile = project / "lakefile.lean"
    lakefile.write_text(lakefile.read_text().replace('@ "main"', '@ "v2"'))
    (problem,) = check_project(project)
    assert problem.check == "manifest" and "out of date" in problem.what
    assert "v2" in problem.what and "main" in problem.what
    lakefile.write_text(lakefile.read_text().replace(FOO_URL, BAR_URL + ".git"))
    (problem,) = check_project(project)
    assert "git url" in problem.what and "revision" in problem.what


def test_a_package_checked_out_at_another_commit_is_a_warning(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", requires={"foo": FOO_URL})
    git = project / ".lake" / "packages" / "foo" / ".git"
    (git / "HEAD").write_text(SHA_B + "\n")
    (problem,) = check_project(project)
    assert (problem.severity, problem.check) == ("warn", "manifest")
    assert "git fetch" in problem.why
    # HEAD on a branch: the branch's commit counts (loose ref, then packed-refs)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA_A} refs/heads/main\n")
    assert git_head(git.parent) == SHA_A and check_project(project) == []
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "refs" / "heads" / "main").write_text(SHA_B + "\n")
    assert git_head(git.parent) == SHA_B and len(check_project(project)) == 1


# ------------------------------------------------------------------------ reading files
def test_lakefile_lean_requires_and_libraries(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "import Lake",
            "open Lake DSL",
            "package «my-proj» where",
            "  leanOptions := #[]",
            '-- require commented from git "x"',
            '/- require blocked from git "y" -/',
            'require "leanprover-community" / "mathlib"',
            "require batteries from git",
            '  "https://github.com/leanprover-community/batteries" @ "v4.19.0"',
            'require «doc-gen4» from git "https://github.com/leanprover/doc-gen4" @ "main"',
            'require local_dep from ".." / "local"',
            'meta if get_config? env = some "dev" then',
            '  require conditional from git "https://example.com/c"',
            "@[default_target]",
            "lean_lib Proj where",
            "  roots := #[`Proj]",
            "lean_lib «Extra.Lib»",
            "lean_exe tool",
        ]
    )
    (tmp_path / "lakefile.lean").write_text(text)
    parsed = read_lakefile(tmp_path)
    assert [(r.name, r.git, r.rev) for r in parsed.requires] == [
        ("mathlib", None, None),
        ("batteries", "https://github.com/leanprover-community/batteries", "v4.19.0"),
        ("doc-gen4", "https://github.com/leanprover/doc-gen4", "main"),
        ("local_dep", None, None),
    ]
    assert parsed.requires[-1].path == ".."
    assert parsed.libraries == ["Proj", "Extra.Lib"]


def test_lakefile_toml_requires_and_libraries(tmp_path: Path) -> None:
    (tmp_path / "lakefile.toml").write_text(
        'name = "proj"\ndefaultTargets = ["Proj"]\n\n'
        '[[require]]\nname = "mathlib"\nscope = "leanprover-community"\nrev = "v4.19.0"\n\n'
        '[[require]]\nname = "foo"\ngit = "https://github.com/acme/foo"  # comment\n'
        'rev = "main"\n\n[[require]]\nname = "bar"\ngit = {url = "https://x/bar", subDir = "b"}\n'
        '\n[[lean_lib]]\nname = "Proj"\n\n[[lean_exe]]\nname = "tool"\n'
    )
    parsed = read_lakefile(tmp_path)
    assert [(r.name, r.git, r.rev) for r in parsed.requires] == [
        ("mathlib", None, "v4.19.0"),
        ("foo", "https://github.com/acme/foo", "main"),
        ("bar", "https://x/bar", None),
    ]
    assert parsed.libraries == ["Proj"]


def test_manifest_formats_6_and_7(tmp_path: Path) -> None:
    old = {
        "version": 6,
        "packagesDir": "lake-packages",
        "packages": [
            {"git": {"url": FOO_URL, "rev": SHA_A, "name": "foo", "inputRev?": "main"}},
            {"path": {"name": "local", "dir": "../local", "inherited": False}},
        ],
    }
    (tmp_path / "lake-manifest.json").write_text(json.dumps(old))
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.packages_dir == "lake-packages"
    foo, local = manifest.packages
    assert (foo.kind, foo.url, foo.rev, foo.input_rev) == ("git", FOO_URL, SHA_A, "main")
    assert foo.directory(tmp_path) == tmp_path / "lake-packages" / "foo"
    assert local.kind == "path" and local.directory(tmp_path) == tmp_path / "../local"
    (tmp_path / "lake-manifest.json").write_text("{not json")
    assert read_manifest(tmp_path) is None


# ------------------------------------------------------------------------ at pool start
def test_the_environment_switch_turns_errors_into_warnings_or_off(
    fakes: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project_config(make_project(tmp_path / "p", built=False))
    monkeypatch.setenv(PREFLIGHT_ENV, "warn")
    with pytest.warns(PreflightWarning, match="not built"):
        assert checks(enforce_preflight(config)) == [("error", "project-build")]
    monkeypatch.setenv(PREFLIGHT_ENV, "off")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert enforce_preflight(config) == []


def test_the_error_pickles_with_its_problems(tmp_path: Path) -> None:
    problems = check_project(make_project(tmp_path / "p", built=False))
    error = PreflightError.from_problems(problems)
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, PreflightError) and copy.problems == error.problems
    assert str(copy) == str(error) and copy.step.startswith("preflight: ")
