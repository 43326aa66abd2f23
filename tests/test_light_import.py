"""``import conformance`` and ``conformance validate`` never load torch (the package's public names
are imported on first use, PEP 562), so the pytest plugin and a case-file check start fast and work
where torch is absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import conformance

ROOT = Path(__file__).resolve().parent.parent


def python(code: str, *arguments: str, env_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ)
    if env_path is not None:  # a sitecustomize that makes `import torch` fail, as if torch were not installed
        env["PYTHONPATH"] = os.pathsep.join([str(env_path), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def without_torch(tmp_path: Path) -> Path:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n", encoding="utf-8")
    return tmp_path


def test_import_conformance_does_not_import_torch() -> None:
    done = python("import conformance, sys; assert 'torch' not in sys.modules, 'torch was imported'")
    assert done.returncode == 0, done.stderr


def test_validate_runs_with_torch_unimportable(tmp_path: Path) -> None:
    blocked = python("import torch", env_path=without_torch(tmp_path))
    assert blocked.returncode != 0 and "ModuleNotFoundError" in blocked.stderr  # the trick works
    done = python("", "-m", "conformance", "validate", "cases", env_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert " valid cases, 0 invalid, in " in done.stdout


def test_every_public_name_resolves() -> None:
    for name in conformance.__all__:
        assert getattr(conformance, name).__name__ == name
    assert set(dir(conformance)) >= set(conformance.__all__)
