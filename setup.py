"""Build step that ships the case library inside the package.

Everything else about the package is declared in pyproject.toml. The case library stays at the
top of the repository (cases/, the layout the design card describes); a built package must
still carry it, so that `conformance run` works after a plain `pip install` with no checkout
around. setuptools cannot map a folder outside the package tree into it declaratively while
packages are found automatically, so `build_py` copies cases/ to conformance/case_library/ in
the build tree, and the wheel takes it from there. conformance/cases/library.py looks for that copy
first and falls back to the checkout's cases/ (editable installs build nothing: they read the
checkout itself).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LIBRARY_SOURCE = Path(__file__).resolve().parent / "cases"
LIBRARY_TARGET = Path("conformance", "case_library")  # must match conformance/cases/library.py PACKAGED_FOLDER


def library_files() -> list[Path]:
    """Every file under cases/, as paths relative to it (caches and compiled files left out)."""
    return sorted(
        p.relative_to(LIBRARY_SOURCE)
        for p in LIBRARY_SOURCE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


class BuildPyWithCaseLibrary(build_py):
    """The usual build_py, plus a copy of cases/ as conformance/case_library/ in the build tree."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads the checkout's cases/ directly
        if not LIBRARY_SOURCE.is_dir():
            raise SystemExit(f"setup.py: the case library {LIBRARY_SOURCE} is missing; cannot build the package")
        library = Path(self.build_lib) / LIBRARY_TARGET
        # A build folder reused from an earlier build may hold cases deleted since: start empty.
        shutil.rmtree(library, ignore_errors=True)
        for relative in library_files():
            target = library / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(LIBRARY_SOURCE / relative, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        copied = (
            []
            if self.editable_mode
            else [str(Path(self.build_lib) / LIBRARY_TARGET / relative) for relative in library_files()]
        )
        return list(super().get_outputs(include_bytecode)) + copied


setup(cmdclass={"build_py": BuildPyWithCaseLibrary})
