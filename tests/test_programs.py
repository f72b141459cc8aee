"""The standalone programs (harness/programs.py): made for every verified row that has one, on the default
model and on a user's model of two inputs of two dtypes; each builds, runs without the harness, computes the
reference's outputs and prints its µs per call, and the report links and quotes it. Each of its processes
follows a fresh process of its row's own runner (programs/<row>/paired/<k>/, never raw/), whose figures it is
compared with. How far its figure is from its row's is a measurement, shown in the report's fidelity table, not
a pass/fail test here."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import programs
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.suite_file import parse_suite
from tests.conftest import TESTS, TINY
from tests.tiny import USER_INPUTS, USER_MODEL

ROWS = ["python-eager", "python-aoti-single", "cpp-aoti", "cpp-aoti-dynamic", "cpp-torchscript-inference", "cpp-api",
        "cpp-raw"]
USER_ROWS = ["python-eager", "python-torchscript", "python-aoti-loader", "cpp-aoti", "cpp-torchscript"]
# cpp-api's build with the option layout = columns, which its program does not write out: a row without one
NO_PROGRAM = "cpp-api-columns"


def _suites() -> dict[str, tuple[dict[str, Any], str]]:
    mlp = tomllib.loads(TINY.read_text())
    mlp.pop("claims", None)
    mlp["run"].update(calls=2000, warmup_calls=20, repeats=2, programs=True)
    mlp["runners"] = [{"id": r} for r in [*ROWS, NO_PROGRAM]]
    user = {
        "name": "programs-user", "model": USER_MODEL,
        "inputs": USER_INPUTS,
        "run": {"calls": 300, "warmup_calls": 3, "warmup_s": 0, "repeats": 1, "timeout_s": 300},
        "runners": [{"id": r} for r in USER_ROWS],
    }
    return {"mlp": (mlp, "programs.toml"), "user": (user, "programs-user.toml")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {kind: run_suite(parse_suite(data, name), tmp_path_factory.mktemp(kind), BUILD_DIR, quiet=True)
            for kind, (data, name) in _suites().items()}


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under folder: its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("kind", "rows"), [("mlp", ROWS), ("user", USER_ROWS)])
def test_every_verified_row_with_a_program_gets_one_that_matches(runs: dict[str, Path], kind: str,
                                                                 rows: list[str]) -> None:
    run = runs[kind]
    made = {r["row"]: r for r in programs.read(run)}
    assert set(made) == set(rows), f"{NO_PROGRAM} has no program; every other row has one"
    for row, r in made.items():
        assert r["status"] == "ok" and r["outputs_ok"], f"{row}: {r['message']}"
        processes = 2 if kind == "mlp" else 1  # as many as the row's repeats
        assert len(r["us_per_call"]) == processes and all(f > 0 for f in r["us_per_call"])
        # as many paired processes of the row's own runner, which the program is compared with
        assert len(r["paired_row_us_per_call"]) == processes and all(f > 0 for f in r["paired_row_us_per_call"])
        same = programs.compare(r["us_per_call"], r["paired_row_us_per_call"])
        assert {k: r[k] for k in same} == same
        assert r["diff_pct"] == pytest.approx(100.0 * (r["best_us"] / r["paired_row_us"] - 1.0))
        assert r["row_mean_us"] > 0 and r["snippet"], row  # the main run's figure, kept beside them
        folder = run / r["folder"]
        job = json.loads((run / "raw" / row / "0" / "job.json").read_text())
        for k in range(processes):  # the row's own job, its files in paired/<k>/; its outputs not kept
            paired = folder / "paired" / str(k)
            again = json.loads((paired / "job.json").read_text())
            assert again == programs.paired_job(job, paired), row
            assert {k: v for k, v in again.items() if k not in programs.JOB_OUTPUTS} == {
                k: v for k, v in job.items() if k not in programs.JOB_OUTPUTS}
            assert all(Path(again[k]).parent == paired for k in programs.JOB_OUTPUTS), row
            assert "/raw/" not in json.dumps(again), row
            assert (paired / "timings.bin").is_file() and (paired / "result.json").is_file()
            assert not (paired / "outputs.bin").exists(), row
            assert programs.mean_us(paired / "timings.bin", job["calls"]) == r["paired_row_us_per_call"][k]
        assert (folder / "run.sh").exists() and (folder / r["main"]).exists()
        source = (folder / r["main"]).read_text()
        assert "runner_common" not in source and "job.json" not in source  # none of the harness in it
    report = (run / "report.md").read_text()
    assert "## Standalone programs" in report and "row µs/call beside it" in report and "compared over" in report
    assert "row µs/call in the main run (fastest repeat)" in report and "`programs/<row>/paired/<k>/`" in report
    for row in rows:
        assert f"(programs/{row}/" in report


@pytest.mark.parametrize("kind", ["mlp", "user"])
def test_the_suite_is_read_back_as_it_ran(runs: dict[str, Path], kind: str) -> None:
    """suite.json read back gives the suite the run measured (a user's model: with its outputs' sizes, found when it
    ran), so the rows' runners are the builds the run used."""
    data, name = _suites()[kind]
    suite = parse_suite(data, name)
    recorded = programs.recorded_suite(runs[kind])
    assert recorded.model.outputs == (() if kind == "mlp" else (4, 1))
    model = dataclasses.replace(suite.model, outputs=recorded.model.outputs)  # found when it ran
    assert recorded == dataclasses.replace(suite, model=model)


def test_the_comparison_takes_the_paired_row_figures_within_one_speed_mode() -> None:
    """The program's processes against the row's run beside them, not the main run's figure (which a VM in another
    speed mode minutes earlier gave), and within one speed mode: the fastest of each would compare the modes."""
    # cpp-aoti-minimal's figures in one run here: each side has processes in both modes (0.063-0.067, 0.099-0.119)
    made = programs.compare([0.0992, 0.0668, 0.0633, 0.1028, 0.1112], [0.1061, 0.1185, 0.102, 0.0643, 0.067])
    assert made["compared"] == "the slower of two speed modes (3 + 3 processes)"
    assert made["best_us"] == 0.1028 and made["paired_row_us"] == 0.1061 and made["agrees"]
    # one fast process on one side only: the mode both sides hold is compared, not 0.0858 against 0.1377
    lone = programs.compare([0.0858, 0.1503, 0.1459, 0.137], [0.1448, 0.14, 0.1377, 0.1432])
    assert lone["compared"] == "the slower of two speed modes (3 + 4 processes)"
    assert lone["diff_pct"] == pytest.approx(100.0 * (0.1459 / np.median([0.1448, 0.14, 0.1377, 0.1432]) - 1.0))
    even = programs.compare([0.066, 0.064, 0.101, 0.103], [0.065, 0.067, 0.102, 0.104])
    assert even["compared"] == "the faster of two speed modes (2 + 2 processes)"  # a tie: the faster mode
    made = programs.compare([42.2, 30.0, 34.5], [29.0, 31.0, 40.0])  # no two modes: every process's median
    assert made["compared"] == "all processes (3 + 3)" and made["best_us"] == 34.5 and made["paired_row_us"] == 31.0
    assert made["diff_pct"] == pytest.approx(100.0 * (34.5 / 31.0 - 1.0)) and not made["agrees"]
    apart = programs.compare([1.0, 1.01], [1.5, 1.52])  # modes that share no side: a real difference, not hidden
    assert apart["compared"] == "all processes (2 + 2)" and not apart["agrees"]
    assert not programs.compare([30.0], [25.3])["agrees"]
    record = {"row": "python-eager", "folder": "programs/python-eager", "main": "program.py", "status": "ok",
              "message": "", "outputs_ok": True, "us_per_call": [0.0992, 0.0668, 0.0633, 0.1028, 0.1112],
              "paired_row_us_per_call": [0.1061, 0.1185, 0.102, 0.0643, 0.067], "row_mean_us": 0.063,
              **programs.compare([0.0992, 0.0668, 0.0633, 0.1028, 0.1112], [0.1061, 0.1185, 0.102, 0.0643, 0.067])}
    table = programs.fidelity_table([record])
    line = table.splitlines()[-1]
    assert [c.strip() for c in line.strip("|").split("|")][3:] == [
        "0.103", "0.106", "the slower of two speed modes (3 + 3 processes)", "-3.1 %", "yes", "0.063"]
    old = {k: v for k, v in record.items() if k not in ("paired_row_us", "paired_row_us_per_call")}
    assert "| — " in programs.fidelity_table([old]).splitlines()[-1]  # a run from before the pairing: not compared


def _one_row(runs: dict[str, Path], tmp_path: Path, row: str) -> tuple[Path, pd.DataFrame]:
    """A copy of the mlp run, and its results with only `row`: make_all again on it alone."""
    run = tmp_path / "run"
    shutil.copytree(runs["mlp"], run)
    df = pd.read_csv(run / "results.csv")
    return run, df[df["runner"].eq(row)]


def test_no_paired_process_writes_under_raw(runs: dict[str, Path], tmp_path: Path) -> None:
    """The row's runner started again by make_all (harness/run.py's way: its build, environment, folder) writes its
    files in programs/<row>/paired/<k>/ only: raw/ is as the run left it."""
    run, df = _one_row(runs, tmp_path, "cpp-raw")
    before = _files(run / "raw")
    made = programs.make_all(run, df, BUILD_DIR, 2, lambda _: None)
    assert [r["status"] for r in made] == ["ok"], made
    assert _files(run / "raw") == before
    assert sorted(p.name for p in (run / "programs" / "cpp-raw" / "paired").iterdir()) == ["0", "1"]
    assert len(made[0]["paired_row_us_per_call"]) == len(made[0]["us_per_call"]) == 2


def test_a_paired_process_that_fails_marks_the_record(runs: dict[str, Path], tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The row's runner failing beside its program: the record is FAILED with the runner's own last line."""
    run, df = _one_row(runs, tmp_path, "cpp-raw")
    failing = programs.RowRunner([sys.executable, "-c", "import sys; sys.exit('no model here')"], {}, None, 60.0)
    monkeypatch.setattr(programs, "row_runner", lambda *_: failing)
    made = programs.make_all(run, df, BUILD_DIR, 2, lambda _: None)
    assert made[0]["status"] == "FAILED" and "no model here" in made[0]["message"], made
    assert "the row's runner beside it" in made[0]["message"]
    assert "| FAILED: the row's runner beside it" in programs.fidelity_table(made)


def test_a_program_runs_on_its_own_and_computes_the_reference(runs: dict[str, Path], tmp_path: Path) -> None:
    """A user's way: the C++ program's own run.sh (cmake, then the program), OUTPUTS appended, on the user's
    model of two inputs; its outputs are the reference's."""
    run = runs["user"]
    folder = run / "programs" / "cpp-aoti"
    command = (folder / "run.sh").read_text().splitlines()[-1].split()
    assert command[0] == "./build/program"
    out = tmp_path / "outputs.bin"
    # built by the harness already: run the binary it built from the very same files
    job = json.loads((run / "raw" / "cpp-aoti" / "0" / "job.json").read_text())
    argv = programs.build(programs.PROGRAMS["cpp-aoti"], folder, BUILD_DIR)
    p = subprocess.run([*argv, *command[1:], str(out)], cwd=folder, capture_output=True, text=True, timeout=300,
                       check=False)
    assert p.returncode == 0, p.stderr
    assert programs._FIGURE.search(p.stdout)
    reference = np.fromfile(run / "raw" / "reference.bin", dtype="<f4")
    got = np.fromfile(out, dtype="<f4")
    assert got.size == job["input_count"] * job["output_size"] == reference.size
    np.testing.assert_allclose(got, reference, atol=1e-4, rtol=1e-4)


def test_wrong_outputs_are_caught(runs: dict[str, Path], tmp_path: Path) -> None:
    run = runs["mlp"]
    job = json.loads((run / "raw" / "cpp-aoti" / "0" / "job.json").read_text())
    row = {"runner_id": "cpp-aoti"}
    reference = np.fromfile(run / "raw" / "reference.bin", dtype="<f4")
    good = tmp_path / "good.bin"
    reference.astype("<f4").tofile(good)
    assert programs.check(run, row, job, good).ok
    bad = tmp_path / "bad.bin"
    (reference + 0.01).astype("<f4").tofile(bad)
    assert not programs.check(run, row, job, bad).ok
    short = tmp_path / "short.bin"
    reference[:-1].astype("<f4").tofile(short)
    assert "output values" in programs.check(run, row, job, short).message


def test_a_program_that_fails_marks_its_record(runs: dict[str, Path], tmp_path: Path) -> None:
    """A program whose model file cannot be loaded: its record says FAILED with the program's own last line."""
    run = runs["mlp"]
    job = json.loads((run / "raw" / "python-aoti-single" / "0" / "job.json").read_text())
    job["model_file"] = str(tmp_path / "missing.pt2")
    program = programs.PROGRAMS["python-aoti"]
    programs.render(program, "python-aoti-single", job, tmp_path / "p")
    argv = programs.build(program, tmp_path / "p", BUILD_DIR)
    with pytest.raises(RuntimeError, match="exit status"):
        programs.run_one(program, argv, tmp_path / "p", job, None)


def test_the_programs_written_from_the_model(runs: dict[str, Path]) -> None:
    """python-eager's program imports the model's class from its own model.py; cpp-api's builds its module under the
    row's InferenceMode guard, before the weights are loaded; cpp-raw's is plain C++, no libtorch in its CMake
    project, its run.sh or its binary."""
    run = runs["mlp"]
    eager = run / "programs" / "python-eager"
    assert "class Net(torch.nn.Module)" in (eager / "model.py").read_text()
    source = (eager / "program.py").read_text()
    assert "from model import Net" in source and "with torch.enable_grad():" in source  # the row's grad mode
    user_model = (runs["user"] / "programs" / "python-eager" / "model.py").read_text()
    assert str(TESTS / "user_factory.py") in user_model  # a factory's module comes from its own file
    api = (run / "programs" / "cpp-api" / "main.cpp").read_text()
    body = api[api.index("int main("):]
    assert body.index("c10::InferenceMode guard;") < body.index("Net model;") < body.index("load_weights(")
    assert "torch::nn::Linear(2, 8)" in api and "torch::nn::Linear(8, 1)" in api
    raw = run / "programs" / "cpp-raw"
    assert "find_package(Torch" not in (raw / "CMakeLists.txt").read_text()
    assert not re.search(r"#include <(torch|ATen|c10)/|torch::|at::", (raw / "main.cpp").read_text())
    assert "CMAKE_PREFIX_PATH" not in (raw / "run.sh").read_text()
    binary = Path(programs.build(programs.PROGRAMS["cpp-raw"], raw, BUILD_DIR)[0])
    needed = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    assert "NEEDED" in needed and "torch" not in needed and "c10" not in needed


def test_an_eager_program_follows_its_rows_grad_mode(runs: dict[str, Path], tmp_path: Path) -> None:
    """The same row under no_grad: the program calls under torch.no_grad(), and says so where it shows the call."""
    run = runs["mlp"]
    job = json.loads((run / "raw" / "python-eager" / "0" / "job.json").read_text())
    model = json.loads((run / "suite.json").read_text())["model"]
    programs.render(programs.PROGRAMS["python-eager"], "python-eager", {**job, "grad_mode": "no_grad"}, tmp_path,
                    model=model)
    source = (tmp_path / "program.py").read_text()
    assert "    with torch.no_grad():" in source and "enable_grad" not in source
    assert programs.snippet(tmp_path / "program.py")[-2:] == ["with torch.no_grad():", "    y = model(x)  # per call"]


def test_the_dynamic_package_gets_cpp_aotis_program_fed_with_a_batch_axis(runs: dict[str, Path]) -> None:
    """cpp-aoti-dynamic (option batch_dim) runs cpp-aoti's program, the same build, on [batch, 2] as its runner
    feeds the package with a dynamic batch dimension; cpp-aoti's exact-shape package gets the call's [2]."""
    run = runs["mlp"]
    folders = {row: run / "programs" / row for row in ("cpp-aoti", "cpp-aoti-dynamic")}
    program = programs.PROGRAMS["cpp-aoti"]
    assert programs.build(program, folders["cpp-aoti"], BUILD_DIR) == programs.build(
        program, folders["cpp-aoti-dynamic"], BUILD_DIR)
    assert (folders["cpp-aoti"] / "layout.txt").read_text().splitlines()[1] == "float32 8 0 2"
    assert (folders["cpp-aoti-dynamic"] / "layout.txt").read_text().splitlines()[1] == "float32 8 0 1 2"
    assert "model.dynamic.pt2" in (folders["cpp-aoti-dynamic"] / "run.sh").read_text()
