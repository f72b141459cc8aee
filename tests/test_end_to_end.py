"""The whole path on a tiny suite: every runner built, run, verified against the reference, reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from harness.collect import CSV_COLUMNS
from harness.paths import BUILD_DIR, ROOT
from harness.pipeline import run_suite
from harness.suite_file import load_suite, parse_suite
from tests.conftest import TINY

INVOKE = [sys.executable, "-m", "invoke"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_suite(load_suite(str(TINY)), tmp_path_factory.mktemp("results"), BUILD_DIR, quiet=True)


def test_every_runner_matches_the_reference(tiny_run: Path) -> None:
    df = pd.read_csv(tiny_run / "results.csv")
    expected = [c.id for c in load_suite(str(TINY)).runners]
    assert df["runner"].tolist() == expected
    failed = df[df["status"] != "ok"][["runner", "status", "message"]]
    assert failed.empty, failed.to_string()
    assert df["outputs_ok"].all()
    assert (df["max_abs_err"] <= 1e-4).all()
    assert (df["repeats_ok"] == 2).all()
    assert (df["median_us"] > 0).all() and (df["load_ms"] > 0).all() and (df["first_call_us"] > 0).all()
    assert (df.loc[df["runner"] != "cpp-raw", "threads"] == 1).all()


def test_results_csv_and_report(tiny_run: Path) -> None:
    df = pd.read_csv(tiny_run / "results.csv")
    assert list(df.columns) == CSV_COLUMNS
    report = (tiny_run / "report.md").read_text()
    for rid in df["runner"]:
        assert f"| {rid} " in report
    for png in ("latency.png", "distribution.png", "warmup.png"):
        assert (tiny_run / png).stat().st_size > 1000
    assert "## Environment and method" in report and "torch" in report
    assert "compile_flags: -std=c++20 -O3" in report and "jvm_input_arguments: -Djava.library.path=" in report
    assert json.loads((tiny_run / "status.json").read_text())["status"] == "complete"
    eager = df.set_index("runner").loc["python-eager"]
    assert eager["ratio_to_python_eager"] == pytest.approx(1.0)
    assert df.set_index("runner").loc["cpp-api", "seed_ratio_to_python"] == pytest.approx(9 / 124)


def test_every_process_left_its_logs(tiny_run: Path) -> None:
    for rep in (tiny_run / "raw").glob("*/*"):
        assert (rep / "stdout.txt").exists() and (rep / "stderr.txt").exists() and (rep / "job.json").exists()


def test_report_task_recomputes_the_same_table(tiny_run: Path) -> None:
    before = (tiny_run / "results.csv").read_text()
    p = subprocess.run([*INVOKE, "report", "--run", str(tiny_run)], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert (tiny_run / "results.csv").read_text() == before


def test_layer_spec_change_reaches_every_runner(tmp_path: Path) -> None:
    data = tomllib.loads(TINY.read_text())
    data["model"].update(name="Wide", layers=[3, 16, 16, 16, 2], activation="tanh")
    data["model"]["training"]["steps"] = 200
    data["run"].update(calls=500, repeats=1)
    data["runners"][-1]["block"] = 100
    run = run_suite(parse_suite(data, "wide.toml"), tmp_path, BUILD_DIR, quiet=True)
    df = pd.read_csv(run / "results.csv")
    assert len(df) == len(data["runners"])
    assert df["outputs_ok"].all(), df[["runner", "status", "message"]].to_string()


def test_missing_toolchain_skips_only_its_runners(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    data = tomllib.loads(TINY.read_text())
    data["run"].update(calls=200, repeats=1)
    data["runners"] = [{"id": "python-eager"}, {"id": "cpp-api"}]
    run = run_suite(parse_suite(data, "t.toml"), tmp_path / "res", BUILD_DIR, quiet=True)
    df = pd.read_csv(run / "results.csv").set_index("runner")
    assert df.loc["python-eager", "status"] == "ok"
    assert df.loc["cpp-api", "status"] == "SKIPPED"
    assert "cmake not found on PATH: install CMake (apt-get install cmake)" in df.loc["cpp-api", "message"]
    assert "cpp-api** — SKIPPED: cmake not found" in (run / "report.md").read_text()


def test_cli_bad_suite_is_one_line_and_touches_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("calls = 2000", "calls = -1"))
    results = tmp_path / "results"
    results.mkdir()
    (results / "earlier").mkdir()
    (results / "earlier" / "report.md").write_text("old")
    p = subprocess.run([*INVOKE, "all", "--suite", str(bad), "--results", str(results)],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: {bad}: run.calls: -1 is less than the minimum of 1: "
                                             "keep it within the allowed range (minimum 1)"]
    assert sorted(x.name for x in results.iterdir()) == ["earlier"]
    assert (results / "earlier" / "report.md").read_text() == "old"
    p = subprocess.run([*INVOKE, "all", "--only", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2 and "--only nope: not a runner of suite 'default'" in p.stderr


def test_ctrl_c_marks_the_run_incomplete(tmp_path: Path) -> None:
    data = TINY.read_text().replace("calls = 2000", "calls = 200000").replace("timeout_s = 120", "timeout_s = 600")
    suite = tmp_path / "long.toml"
    suite.write_text(data)
    results = tmp_path / "results"
    # Ctrl-C as in a terminal: SIGINT at its default disposition, even when this test itself was started in
    # the background of a non-interactive shell (which ignores SIGINT, and the child would inherit that)
    proc = subprocess.Popen([*INVOKE, "all", "--suite", str(suite), "--only", "python-eager", "--results",
                             str(results)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not list(results.glob("*/raw/python-eager/0/job.json")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)  # the partial report is written first
    assert proc.returncode == 130, err
    assert "interrupted" in err
    (run,) = list(results.iterdir())
    assert f"run folder: {run}" in err and "building" in err  # progress lines, with no terminal to show a bar on
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "incomplete"
    assert "INCOMPLETE" in (run / "report.md").read_text()
    assert not subprocess.run(["pgrep", "-f", str(run)], capture_output=True).stdout  # runner killed too
