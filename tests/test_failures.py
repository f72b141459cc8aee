"""Failures are clear and harmless: one-line errors, and earlier results byte for byte untouched."""

from __future__ import annotations

import errno
import hashlib
import json
import re
from pathlib import Path

import pytest
from filelock import FileLock

from harness import doctor, pipeline
from harness.config import load_suite
from harness.errors import UserError
from tests.conftest import TINY


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def earlier(tmp_path: Path) -> Path:
    """A results folder holding an earlier run that must survive every failure."""
    results = tmp_path / "results"
    old = results / "20200101-000000-old"
    old.mkdir(parents=True)
    (old / "status.json").write_text(json.dumps({"status": "complete"}))
    (old / "report.md").write_text("# an earlier report\n")
    return results


def test_two_runs_at_once_are_refused(tmp_path: Path, earlier: Path) -> None:
    before = _snapshot(earlier)
    build = tmp_path / "build"
    build.mkdir()
    with FileLock(str(build / ".run.lock")), pytest.raises(UserError, match="another run is in progress"):
        pipeline.run_suite(load_suite(str(TINY)), earlier, build, quiet=True)
    assert _snapshot(earlier) == before


def test_results_path_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match=r"cannot create results folder .*pick a writable place"):
        pipeline.new_run_dir(blocker / "sub")


def test_full_disk_is_one_line_and_marks_the_run(tmp_path: Path, earlier: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = _snapshot(earlier)

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(earlier / "x" / "inputs.bin"))

    monkeypatch.setattr(pipeline, "_run", full)
    with pytest.raises(UserError, match=r"cannot write .*inputs\.bin \(No space left on device\): free disk space"):
        pipeline.run_suite(load_suite(str(TINY)), earlier, tmp_path / "build", quiet=True)
    new = [p for p in earlier.iterdir() if p.name != "20200101-000000-old"]
    assert len(new) == 1
    assert json.loads((new[0] / "status.json").read_text())["status"] == "failed"
    assert {k: v for k, v in _snapshot(earlier).items() if k.startswith("20200101")} == before


def test_each_run_gets_its_own_folder(tmp_path: Path) -> None:
    a, b = pipeline.new_run_dir(tmp_path), pipeline.new_run_dir(tmp_path)
    assert a != b and a.exists() and b.exists()


def test_doctor_names_missing_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    text = doctor.render()
    assert re.search(r"^  cmake +NOT FOUND$", text, re.M)
    assert re.search(r"^  cpp-api +cmake not found on PATH: install it \(apt-get install cmake\)$", text, re.M)
    assert re.search(r"^  java-torchscript +java not found on PATH: install a JDK 17", text, re.M)
    assert re.search(r"^  python-eager +ready$", text, re.M)
