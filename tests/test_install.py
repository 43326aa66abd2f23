"""The project as a user gets it: a wheel, installed NON-editable into a fresh venv, used from an
empty folder with no checkout around (issue 10, "Done when").

Installing torch into a fresh venv would take minutes, so only the project itself is installed
there (``--no-deps``); its dependencies come from this .venv's site-packages, made visible by a
``.pth`` file. A plain path line in a .pth adds that folder to ``sys.path`` without processing the
.pth files inside it, so this .venv's *editable* install of the project stays switched off: the
test asserts that ``conformance`` is imported from the new venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.cases.loader import load_cases

pytestmark = pytest.mark.slow  # builds a wheel and installs it into a fresh venv: the slow tier

ROOT = Path(__file__).resolve().parent.parent
# What a build needs: pyproject.toml's metadata, setup.py's build step, the sources and the cases.
BUILD_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "conformance",
    "reference_impl",
    "cases",
)

# A correct plug-in that words its refusals its own way (not like torch), and one with the classic
# interleaved-groups bug: output channel o is computed, but written where channel o of another
# group belongs. Both compute in float64 with the installed reference and return the input's dtype.
CORRECT_PLUGIN = '''
import numpy as np
import reference_impl


class ConvError(ValueError):
    """mymod's own refusal."""


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    try:
        out = reference_impl.conv2d(np.asarray(input, np.float64), np.asarray(weight, np.float64),
                                    None if bias is None else np.asarray(bias, np.float64),
                                    stride, padding, dilation, groups, **options)
    except ValueError as exc:
        raise ConvError(f"mymod cannot run this layer ({type(exc).__name__})") from None
    return out.astype(np.asarray(input).dtype)


def conv2d_backward(grad_output, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    as64 = lambda a: None if a is None else np.asarray(a, np.float64)
    try:
        grads = reference_impl.conv2d_backward(as64(grad_output), as64(input), as64(weight), as64(bias),
                                               stride, padding, dilation, groups, **options)
    except ValueError as exc:
        raise ConvError(f"mymod cannot run this layer ({type(exc).__name__})") from None
    like = (input, weight, bias)
    return tuple(None if g is None else g.astype(np.asarray(a).dtype) for g, a in zip(grads, like))
'''
WRONG_PLUGIN = (
    CORRECT_PLUGIN.replace("def conv2d(", "def _correct_conv2d(")
    + """

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, **options):
    out = _correct_conv2d(input, weight, bias, stride, padding, dilation, groups, **options)
    per_group = out.shape[1] // groups if groups else 0
    if groups > 1 and per_group > 1:  # (n, groups, per_group, h, w) written as (n, per_group, groups, h, w)
        out = out.reshape(out.shape[0], groups, per_group, *out.shape[2:]).swapaxes(1, 2).reshape(out.shape)
    return out
"""
)


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel from a copy of the sources, install it into a new venv; return the paths."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(path, source / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    dist = base / "dist"
    # --no-build-isolation: build with this .venv's setuptools, offline.
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(source)],
        base,
        env,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("groups_conformance-*.whl")

    venv = base / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    assert created.returncode == 0, created.stderr
    python = venv / "bin" / "python"
    pip = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        base,
        env,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    site_packages = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env).stdout.strip()
    )
    (site_packages / "_outer_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    user_repo = base / "user-repo"  # the user's folder: their module and nothing of ours
    user_repo.mkdir()
    (user_repo / "mymod.py").write_text(textwrap.dedent(CORRECT_PLUGIN))
    (user_repo / "mywrong.py").write_text(textwrap.dedent(WRONG_PLUGIN))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {
        "wheel": wheel,
        "venv": venv,
        "python": python,
        "site_packages": site_packages,
        "user_repo": user_repo,
        "env": env,
    }  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def full_runs(installed: dict) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """The two long runs over the whole bundled library with the correct plug-in, started together
    (they are independent; on a 2-core CI machine this nearly halves the wait)."""
    python, env, repo = str(installed["python"]), installed["env"], installed["user_repo"]
    commands = {
        "run": ["conformance", "run", "--impl", "mymod:conv2d", "-q"],
        "pytest": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--conv-impl", "mymod:conv2d"],
    }
    processes = {
        name: subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, command in commands.items()
    }
    yield processes
    for process in processes.values():  # a test that failed early never waited for its run
        if process.poll() is None:
            process.kill()
            process.communicate()


def _finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_wheel_carries_every_case_file(installed: dict) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    case_files = sorted(p.relative_to(ROOT / "cases").as_posix() for p in (ROOT / "cases").rglob("*") if p.is_file())
    assert case_files, "no case files in the checkout"
    missing = [f for f in case_files if f"conformance/case_library/{f}" not in names]
    assert not missing, f"not in the wheel: {missing}"


@pytest.mark.slow
def test_installed_from_an_empty_folder_runs_the_bundled_library(installed: dict, full_runs: dict) -> None:
    python, env, repo = str(installed["python"]), installed["env"], installed["user_repo"]
    where = _run(
        [
            python,
            "-c",
            "import conformance, conformance.cases.library as l; "
            "print(conformance.__file__); print(l.bundled_cases_path())",
        ],
        repo,
        env,
    )
    module_file, library = where.stdout.split()
    assert Path(module_file).is_relative_to(installed["site_packages"]), where.stdout  # not the checkout's
    assert Path(library) == installed["site_packages"] / "conformance" / "case_library"

    items = load_cases([ROOT / "cases"])
    cases = _run(["conformance", "cases"], repo, env)
    assert cases.returncode == 0, cases.stderr
    assert f"case library: {library}" in cases.stdout
    assert f"{len(items)} cases in {len({i.file for i in items})} files" in cases.stdout

    good = _finished(full_runs["run"])  # conformance run --impl mymod:conv2d -q
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr
    counts = _summary_counts(good.stdout)
    assert counts.get("passed", 0) + counts.get("skipped", 0) >= 200, good.stdout[-500:]
    assert counts.get("failed", 0) == 0, good.stdout[-500:]

    # -k keeps the wrong plug-in's run short: seed/groups2 and seed/groups3, 2+ outputs per group.
    wrong = _run(["conformance", "run", "--impl", "mywrong:conv2d", "-q", "-k", "seed/groups"], repo, env)
    assert wrong.returncode == 1, wrong.stdout[-3000:] + wrong.stderr
    assert "FAILED" in wrong.stdout and "mywrong:conv2d vs torch" in wrong.stdout


@pytest.mark.slow
def test_installed_pytest_plugin_gates_a_plugin_from_an_empty_folder(installed: dict, full_runs: dict) -> None:
    python, env, repo = str(installed["python"]), installed["env"], installed["user_repo"]
    good = _finished(full_runs["pytest"])  # pytest -q --conv-impl mymod:conv2d
    assert good.returncode == 0, good.stdout[-3000:] + good.stderr
    counts = _summary_counts(good.stdout)
    assert counts.get("passed", 0) + counts.get("skipped", 0) >= 200 and "failed" not in counts, good.stdout[-500:]

    wrong = _run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--conv-impl", "mywrong:conv2d", "-k", "seed/groups"],
        repo,
        env,
    )
    assert wrong.returncode == 1, wrong.stdout[-3000:] + wrong.stderr
    counts = _summary_counts(wrong.stdout)
    assert counts["failed"] == 2 and "passed" not in counts, wrong.stdout[-500:]
    assert "conv-cases/seed/groups3.yaml::seed/groups3" in wrong.stdout  # named inside the bundled library
    assert "mywrong:conv2d vs torch" in wrong.stdout and "Traceback" not in wrong.stdout


def _summary_counts(output: str) -> dict[str, int]:
    """{"passed": 3, "failed": 1, ...} from the last summary line of conformance run or pytest."""
    line = [line for line in output.strip().splitlines() if re.search(r"\d+ (passed|failed)", line)][-1]
    return {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", line)}


@pytest.mark.slow
def test_installed_torch_functional_ops_as_a_plugin_pass_the_bundled_library(installed: dict) -> None:
    # issue 19: the oracle's own six functional ops, re-exported unchanged, must pass its own gate
    repo, env = installed["user_repo"], installed["env"]
    (repo / "torch_ops.py").write_text(
        "from torch.nn.functional import conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d\n"
        'ARRAYS = "torch"\n'
    )
    result = _run(["conformance", "run", "--impl", "torch_ops", "-q"], repo, env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    counts = _summary_counts(result.stdout)
    assert counts.get("failed", 0) == 0 and counts.get("passed", 0) >= 250, result.stdout[-500:]
    assert "crashed" not in result.stdout.strip().splitlines()[-1]
