"""Packaging: pyproject.toml declares the dependencies once; `pip install .` and `pip install -e .` work.

Nothing is downloaded. The wheel is built from a copy of the working tree (an in-tree setuptools build
would leave build/ and *.egg-info in the checkout) with this environment's setuptools
(``--no-build-isolation``), and installed with ``--no-index`` into throw-away virtualenvs that see this
environment's site-packages through a ``.pth`` file, so TensorFlow & co. are not installed again.
(``python -m venv --system-site-packages`` run from a virtualenv makes a venv that sees the base
interpreter's site-packages, not that virtualenv's.) The installed copies run from a folder outside
the repository with ``MTL_WEIGHTS`` and ``PYTHONPATH`` unset, so only what pip installed is found.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
WEIGHTS_PACKAGE = "mtl_studio_weights"  # the name weights/ is installed under (setup.py)
SCRIPT = "mtl-studio"


def source_version() -> str:
    """``mtl_core.__version__`` as written in the source: the version pyproject.toml reads (dynamic)."""
    tree = ast.parse((ROOT / "mtl_core" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("mtl_core/__init__.py assigns no __version__")


# -- requirements files against pyproject.toml -----------------------------------------------------
def read_requirements(path: Path) -> tuple[list[Requirement], list[str]]:
    """The requirements of a pip requirements file and the files it includes with ``-r``."""
    reqs, includes = [], []
    for raw in path.read_text().splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            includes.append(line.split(maxsplit=1)[1])
        elif line.startswith("-"):
            raise AssertionError(f"{path.name}: an option pyproject.toml cannot mirror: {raw!r}")
        else:
            reqs.append(Requirement(line))
    return reqs, includes


def by_name(reqs) -> dict[str, tuple]:
    """name -> (specifier set, extras, marker): what must agree, however it is spelled or ordered."""
    out = {}
    for req in (r if isinstance(r, Requirement) else Requirement(r) for r in reqs):
        name = canonicalize_name(req.name)
        assert name not in out, f"{req.name} is listed twice"
        out[name] = (req.specifier, frozenset(req.extras), str(req.marker or ""))
    return out


def test_requirements_txt_lists_exactly_the_project_dependencies():
    reqs, includes = read_requirements(ROOT / "requirements.txt")
    assert includes == []
    assert by_name(reqs) == by_name(PROJECT["dependencies"])


def test_requirements_cluster_txt_is_the_runtime_plus_the_cluster_extra():
    reqs, includes = read_requirements(ROOT / "requirements-cluster.txt")
    assert includes == ["requirements.txt"]
    assert by_name(reqs) == by_name(PROJECT["optional-dependencies"]["cluster"])


def test_requirements_dev_txt_is_the_cluster_set_plus_the_dev_extra():
    reqs, includes = read_requirements(ROOT / "requirements-dev.txt")
    assert includes == ["requirements-cluster.txt"]
    cluster, _ = read_requirements(ROOT / "requirements-cluster.txt")
    assert by_name([*reqs, *cluster]) == by_name(PROJECT["optional-dependencies"]["dev"])


def test_the_comparison_sees_a_changed_floor_a_missing_package_and_a_duplicate(tmp_path):
    """The two tests above fail when the files drift apart (and not over spelling or order)."""
    declared = by_name(PROJECT["dependencies"])
    same, _ = read_requirements(ROOT / "requirements.txt")
    (tmp_path / "reordered.txt").write_text("\n".join(
        f"{r.name.upper()}{'[' + ','.join(sorted(r.extras)) + ']' if r.extras else ''} {r.specifier}  # x"
        for r in same[::-1]))
    assert by_name(read_requirements(tmp_path / "reordered.txt")[0]) == declared
    (tmp_path / "drift.txt").write_text("\n".join("keras>=3.10,<4" if r.name == "keras" else str(r) for r in same))
    assert by_name(read_requirements(tmp_path / "drift.txt")[0]) != declared
    assert by_name(same[1:]) != declared
    with pytest.raises(AssertionError, match="twice"):
        by_name([*same, same[0]])


def test_ruff_targets_the_python_floor_and_this_python_is_above_it():
    requires = SpecifierSet(PROJECT["requires-python"])
    (floor,) = [Version(s.version) for s in requires if s.operator == ">="]
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{floor.major}{floor.minor}"
    assert requires.contains(platform.python_version())


# -- the wheel ---------------------------------------------------------------------------------------
def clean_env(**extra: str) -> dict[str, str]:
    """This environment without what would let a child find the checkout or other shipped models."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "MTL_WEIGHTS", "MTL_HUB_MANIFEST", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run(cmd: list, cwd: Path, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_tree(dest: Path) -> Path:
    """The working tree as a fresh clone plus uncommitted work would have it (no ignored files)."""
    try:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked source archive)
        shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".*_cache", "out"))
        return dest
    for rel in filter(None, listed.decode().split("\0")):
        if (ROOT / rel).is_file():  # listed but deleted in the working tree: gone
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def files_under(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("src") / "mtl-studio")


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         source, "-w", out], cwd=out)
    (built,) = out.glob("*.whl")
    return built


def wheel_metadata(whl: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in whl.namelist() if n.endswith(f".dist-info/{name}")]
    return whl.read(path).decode()


def test_wheel_holds_every_module_and_every_shipped_file_and_nothing_else(wheel, source):
    with zipfile.ZipFile(wheel) as whl:
        names = {n for n in whl.namelist() if not n.endswith("/")}
        code = {n for n in names if n.startswith("mtl_core/")}
        shipped = {n for n in names if n.startswith(f"{WEIGHTS_PACKAGE}/")}
        # A subpackage without __init__.py, or a data file without package-data, would be left out silently.
        assert code == {f"mtl_core/{rel}" for rel in files_under(source / "mtl_core")}
        assert {f"{WEIGHTS_PACKAGE}/{rel}" for rel in files_under(source / "weights")} == shipped
        for rel, path in files_under(source / "weights").items():
            assert sha256(whl.read(f"{WEIGHTS_PACKAGE}/{rel}")) == sha256(path.read_bytes()), rel
        models = {n.split("/")[1] for n in shipped if n.endswith("/model.keras")}
        assert len(models) >= 3 and all(f"{WEIGHTS_PACKAGE}/{m}/card.json" in shipped for m in models)
        rest = names - code - shipped
        assert rest and all(re.fullmatch(r"mtl_studio-[^/]+\.dist-info/[A-Za-z_.]+", n) for n in rest), rest
        assert wheel_metadata(whl, "top_level.txt").split() == sorted(["mtl_core", WEIGHTS_PACKAGE])


def test_wheel_metadata_is_pyproject_toml(wheel):
    with zipfile.ZipFile(wheel) as whl:
        meta = HeaderParser().parsestr(wheel_metadata(whl, "METADATA"))
        entry_points = wheel_metadata(whl, "entry_points.txt")
    assert meta["Name"] == PROJECT["name"]
    assert meta["Version"] == source_version()
    assert meta["Requires-Python"] == PROJECT["requires-python"]
    runtime, extras = [], {name: [] for name in PROJECT["optional-dependencies"]}
    for line in meta.get_all("Requires-Dist"):
        req = Requirement(line)
        if req.marker is None:
            runtime.append(req)
            continue
        extra = next((name for name in extras if str(req.marker) == str(Marker(f'extra == "{name}"'))), None)
        assert extra is not None, line
        req.marker = None
        extras[extra].append(req)
    assert by_name(runtime) == by_name(PROJECT["dependencies"])
    for name, reqs in extras.items():
        assert by_name(reqs) == by_name(PROJECT["optional-dependencies"][name]), name
    assert sorted(meta.get_all("Provides-Extra")) == sorted(PROJECT["optional-dependencies"]) == ["cluster", "dev"]
    assert re.search(r"^\[console_scripts\]\s*^mtl-studio = mtl_core\.cli:entry$", entry_points, re.M), entry_points
    assert PROJECT["scripts"] == {SCRIPT: "mtl_core.cli:entry"}


# -- installed copies --------------------------------------------------------------------------------
def make_venv(folder: Path) -> Path:
    """A virtualenv that also sees this environment's packages (TensorFlow & co.); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60)
    python = folder / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = list(site.getsitepackages()) + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    # An `import` line in a .pth runs at start-up: addsitedir also processes those folders' own .pth files.
    (Path(purelib) / "_parent_env.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in ours))
    return python


def pip_install(python: Path, *args) -> None:
    # --ignore-installed --no-deps: installed here even if this environment has an mtl-studio of its own;
    # whether the dependencies are met is checked against the metadata instead (test below).
    run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps", "--ignore-installed",
         "-q", *args], cwd=python.parent)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """`pip install .` (the wheel pip builds from the tree) in a fresh virtualenv; returns its python."""
    python = make_venv(tmp_path_factory.mktemp("venv") / "installed")
    pip_install(python, wheel)
    return python


@pytest.fixture()
def outside(tmp_path) -> tuple[Path, dict]:
    """A working folder outside the repository and an environment with an empty model store."""
    (tmp_path / "home").mkdir()
    return tmp_path, clean_env(MTL_HOME=str(tmp_path / "home"))


PROBE = r"""
import json, sys
from importlib import metadata, resources
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
import mtl_core

shipped = resources.files("mtl_studio_weights")
unmet = []
for line in metadata.requires("mtl-studio"):
    req = Requirement(line)
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or not req.specifier.contains(have, prereleases=True):
            unmet.append(f"{req} (have {have})")
print(json.dumps({"mtl_core": mtl_core.__file__, "version": mtl_core.__version__, "prefix": sys.prefix,
                  "metadata_version": metadata.version("mtl-studio"), "unmet": unmet, "shipped": str(shipped),
                  "models": sorted(p.name for p in shipped.iterdir()
                             if (p / "card.json").is_file() and (p / "model.keras").is_file())}))
"""


def shipped_models() -> dict[str, str]:
    """model id -> preset of every model in the repository's weights/."""
    return {p.parent.name: json.loads(p.read_text())["preset"] for p in sorted((ROOT / "weights").glob("*/card.json"))}


def test_installed_copy_imports_from_its_venv_with_its_weights_and_met_dependencies(installed, outside):
    cwd, env = outside
    venv = installed.parent.parent
    got = json.loads(run([installed, "-c", PROBE], cwd=cwd, env=env).stdout)
    site_packages = Path(got["mtl_core"]).resolve().parent.parent
    assert site_packages.is_relative_to(venv.resolve()) and site_packages.name == "site-packages", got
    assert not Path(got["mtl_core"]).is_relative_to(ROOT)
    assert got["version"] == got["metadata_version"] == source_version()
    assert got["unmet"] == []
    assert Path(got["shipped"]).resolve() == site_packages / WEIGHTS_PACKAGE
    assert got["models"] == sorted(shipped_models())
    assert (venv / "bin" / SCRIPT).is_file()


def test_installed_console_script_reports_the_version(installed, outside):
    cwd, env = outside
    proc = run([installed.parent / SCRIPT, "--version"], cwd=cwd, env=env, timeout=60)
    assert re.search(rf"(?<![\w.]){re.escape(source_version())}(?![\w.])", proc.stdout + proc.stderr), proc


def test_installed_console_script_serves_the_shipped_models(installed, outside):
    """A non-editable install has no weights/ beside mtl_core: the store must use mtl_studio_weights."""
    cwd, env = outside
    proc = run([installed.parent / SCRIPT, "presets", "--json"], cwd=cwd, env=env, timeout=120)
    rows = {row["name"]: row for row in json.loads(proc.stdout)["presets"]}
    expected = {preset: model for model, preset in shipped_models().items()}
    assert expected and set(expected) <= set(rows)
    assert {name: rows[name]["default_model"] for name in expected} == expected


def test_editable_install_runs_the_source_and_its_weights_folder(source, tmp_path_factory, outside):
    cwd, env = outside
    python = make_venv(tmp_path_factory.mktemp("venv") / "editable")
    pip_install(python, "-e", source)
    assert (python.parent / SCRIPT).is_file()
    # Edits to the source are live: a module added after the install imports.
    (source / "mtl_core" / "_editable_probe.py").write_text("SOURCE = __file__\n")
    probe = ("import json, mtl_core, mtl_core._editable_probe as p\n"
             "from mtl_core.control.store import ModelStore, shipped_dir\n"
             "store = ModelStore(root='store-models')\n"
             "print(json.dumps({'init': mtl_core.__file__, 'probe': p.SOURCE, 'shipped': str(shipped_dir()),\n"
             "                  'models': sorted(m.id for m in store.list())}))")
    got = json.loads(run([python, "-c", probe], cwd=cwd, env=env).stdout)
    assert Path(got["init"]) == source / "mtl_core" / "__init__.py"
    assert Path(got["probe"]) == source / "mtl_core" / "_editable_probe.py"
    assert Path(got["shipped"]).resolve() == (source / "weights").resolve()
    assert got["models"] == sorted(shipped_models())
