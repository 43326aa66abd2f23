"""The bundled case library: where it is found, how it is versioned, `conformance cases` and --export."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance.cases import library
from conformance.cases.library import (
    LibraryNotFoundError,
    bundled_cases_path,
    content_hash,
    describe_cases,
    library_version,
)
from conformance.cases.loader import load_cases
from conformance.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_in_a_checkout_the_bundled_library_is_the_cases_folder_itself() -> None:
    assert bundled_cases_path() == ROOT / "cases"


def test_an_installed_copy_is_preferred_and_a_missing_library_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake installed layout: site-packages/conformance/ with case_library/ inside, no checkout around.
    package = tmp_path / "site-packages" / "conformance"
    (package / "case_library").mkdir(parents=True)
    monkeypatch.setattr(library, "_PACKAGE_DIR", package)
    assert bundled_cases_path() == package / "case_library"
    shutil.rmtree(package / "case_library")
    with pytest.raises(LibraryNotFoundError, match="neither .*case_library.* nor .*cases"):
        bundled_cases_path()


def test_the_version_is_the_package_version_plus_the_content_hash() -> None:
    version = library_version()
    assert version == f"{library.package_version()}+cases.{content_hash([ROOT / 'cases'])}"
    assert len(version.rpartition(".")[2]) == library.HASH_LENGTH


def test_the_hash_tells_an_edited_copy_from_the_library_but_not_a_moved_one(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "cases", copy)
    assert describe_cases([copy]) == library_version()  # same files, another folder: same library
    seed = copy / "seed" / "groups2.yaml"
    seed.write_text(seed.read_text() + "\n# a local edit\n")
    assert describe_cases([copy]).startswith("custom+cases.")
    assert describe_cases([copy]) != describe_cases([ROOT / "cases"])
    seed.rename(copy / "seed" / "renamed.yaml")  # renaming is a change too
    assert content_hash([copy]) != content_hash([ROOT / "cases"])


def test_cases_command_prints_the_location_version_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    items = load_cases([ROOT / "cases"])
    files = {item.file for item in items}
    assert f"case library: {ROOT / 'cases'}" in out
    assert f"version: {library_version()}" in out
    assert f"{len(items)} cases in {len(files)} files" in out
    seed_cases = sum(1 for item in items if Path(item.file).parent.name == "seed")
    assert any(line.split()[:2] == ["seed", str(seed_cases)] for line in out.splitlines())


def test_export_copies_every_file_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "my-cases"
    assert main(["cases", "--export", str(target)]) == 0
    exported = sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file())
    original = sorted(p.relative_to(ROOT / "cases") for p in (ROOT / "cases").rglob("*") if p.is_file())
    assert exported == sorted(original + [Path(library.VERSION_FILE)])
    assert (target / library.VERSION_FILE).read_text().splitlines()[0] == library_version()
    assert describe_cases([target]) == library_version()
    assert f"exported the case library {library_version()}" in capsys.readouterr().out
    # A second export into the now non-empty folder is refused: exit 2, nothing touched.
    before = (target / "seed" / "groups2.yaml").stat().st_mtime_ns
    assert main(["cases", "--export", str(target)]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert (target / "seed" / "groups2.yaml").stat().st_mtime_ns == before
