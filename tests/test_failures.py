"""Failures are clear and harmless: one-line errors, a self-healing build cache, earlier results untouched."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
from filelock import FileLock

from harness import doctor, pipeline
from harness.errors import UserError
from harness.inputs import make_inputs
from harness.models import check_model_files, train_and_export
from harness.paths import ROOT
from harness.suite_file import load_suite, parse_suite
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


def test_a_second_run_waits_for_the_first_and_says_so(tmp_path: Path, earlier: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """While one run holds the machine's lock another waits, saying why, and goes on once it is released."""
    before = _snapshot(earlier)
    build = tmp_path / "build"
    build.mkdir()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the waiting run fails at its first step after the lock: no run is needed
    outcome: list[BaseException] = []

    def second() -> None:
        try:
            pipeline.run_suite(load_suite(str(TINY)), blocker / "results", build, quiet=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome.append(exc)

    with FileLock(str(build / pipeline.RUN_LOCK)):
        waiting = threading.Thread(target=second)
        waiting.start()
        said = ""
        for _ in range(600):
            said += capsys.readouterr().err
            if "waiting for it to finish" in said:
                break
            time.sleep(0.05)
        assert "another run is in progress on this machine" in said and "waiting for it to finish" in said
        assert waiting.is_alive() and not outcome  # still waiting while the lock is held
    waiting.join(timeout=60)
    assert not waiting.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], UserError), outcome
    assert "cannot create results folder" in str(outcome[0])  # it went on once the lock was free
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
    assert re.search(r"^  cmake +not found: install CMake \(apt-get install cmake\)$", text, re.M)
    assert re.search(r"^  cpp-api +cmake not found on PATH: install CMake \(apt-get install cmake\)$", text, re.M)
    assert re.search(r"^  java-torchscript +java not found on PATH: install a JDK 17", text, re.M)
    assert re.search(r"^  python-eager +ready$", text, re.M)
    headers = r"^  ONNX Runtime from C\+\+: no reachable registry ships ONNX Runtime's C/C\+\+ API headers"
    assert re.search(headers, text, re.M)
    assert re.search(r"^  JDKs \(a runner's jdk\) +\S", text, re.M)  # found by folder even without PATH


INVOKE = [sys.executable, "-m", "invoke"]
BAD_SUITES = {
    "malformed TOML": ("[run\ncalls = 1", r"not valid TOML .*fix the syntax"),
    "wrong type": (("calls = 2000", "calls = 'many'"), r"run\.calls: 'many' is not of type 'integer'"),
    "negative count": (("calls = 2000", "calls = -3"), r"run\.calls: -3 is less than the minimum of 1"),
    "absurd count": (("repeats = 2", "repeats = 100000"), r"run\.repeats: 100000 is greater than the maximum"),
    "unknown runner": (('id = "cpp-raw"', 'id = "fortran-raw"'), r"unknown runner 'fortran-raw': use one of"),
    "code in a name": (('name = "MyNN"', 'name = "x\\"); import os; os.system(\\"id"'), r"model\.name: .*letters"),
    "code in a layer spec": (("layers = [2, 8, 8, 1]", 'layers = [2, "8); system(\\"id\\")", 1]'),
                             r"model\.layers\[1\]: .* is not of type 'integer'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SUITES))
def test_bad_suite_from_the_command_line(case: str, tmp_path: Path, earlier: Path) -> None:
    edit, pattern = BAD_SUITES[case]
    text = edit if isinstance(edit, str) else TINY.read_text().replace(*edit)
    assert text != TINY.read_text()
    suite = tmp_path / "bad.toml"
    suite.write_text(text)
    before = _snapshot(earlier)
    p = subprocess.run([*INVOKE, "all", "--suite", str(suite), "--results", str(earlier)],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {suite}: ")
    assert re.search(pattern, lines[0]), lines[0]
    assert _snapshot(earlier) == before


@pytest.mark.parametrize("damage", ["truncated inputs", "altered inputs", "altered model", "missing model"])
def test_damaged_build_files_are_rebuilt_and_the_run_goes_on(damage: str, tmp_path: Path, earlier: Path,
                                                            capfd: pytest.CaptureFixture[str]) -> None:
    """The build cache heals itself: one warning line naming the bad file, the same content again, a complete run."""
    data = tomllib.loads(TINY.read_text())
    data["model"]["training"]["steps"] = 20
    data["run"] |= {"calls": 200, "repeats": 1}
    data["runners"] = [{"id": "python-eager"}]
    suite = parse_suite(data, "t.toml")
    build = tmp_path / "build"
    model = train_and_export(suite.model, suite.inputs, build)
    inputs = make_inputs(suite.inputs, 2, build)
    target = {"truncated inputs": inputs.data, "altered inputs": inputs.data,
              "altered model": model.weights, "missing model": model.torchscript}[damage]
    original = target.read_bytes()
    if damage == "truncated inputs":
        target.write_bytes(original[:-8])
    elif damage == "missing model":
        target.unlink()
    else:
        target.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    size = len(original)
    what = {"truncated inputs": f"has {size - 8} bytes, manifest says {size} (truncated?): regenerating it",
            "altered inputs": "does not match its manifest's sha256 (altered or corrupt): regenerating it",
            "altered model": "does not match its recorded sha256 (altered or corrupt): retraining the model and "
                             "exporting it again",
            "missing model": "is missing: retraining the model and exporting it again"}[damage]
    before = _snapshot(earlier)
    capfd.readouterr()
    run = pipeline.run_suite(suite, earlier, build, quiet=True)
    assert capfd.readouterr().err.splitlines() == [f"warning: {target} {what}"]  # that line and nothing else
    assert json.loads((run / "status.json").read_text())["status"] == "complete"
    assert {k: v for k, v in _snapshot(earlier).items() if k.startswith("20200101")} == before
    if damage == "missing model":  # traced again in this process: same weights, the record vouches for the file
        assert check_model_files(model) is None
    else:
        assert target.read_bytes() == original
