"""The Java standalone programs (harness/programs.py, java/programs/): one Maven project per Java row, on the
default model and on a user's model of two inputs of two dtypes; each builds, runs without the harness (on the
JNI bridge through java.library.path, or ONNX Runtime from Maven alone), computes the reference's outputs and
prints its µs per call, and the report links and quotes it. Its figure against its row's own runner's, run again
beside each of its processes, is the report's fidelity table, not a pass/fail test here. Each program is built
once (cached by its sources), shared by both runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import programs
from harness.java_build import java_toolchain_problem
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.suite_file import parse_suite
from tests.conftest import TINY
from tests.tiny import USER_INPUTS, USER_MODEL

# java-torchscript-optimized: java-torchscript-reuse's build and program, with the bridge's graph optimizer on
ROWS = ["java-torchscript", "java-torchscript-reuse", "java-torchscript-optimized", "java-aoti", "java-onnxruntime"]
BRIDGE_ROWS = ROWS[:4]

pytestmark = pytest.mark.skipif(java_toolchain_problem() is not None, reason=str(java_toolchain_problem()))


def _run(data: dict[str, Any], name: str, tmp: Path) -> Path:
    return run_suite(parse_suite(data, name), tmp, BUILD_DIR, quiet=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    mlp = tomllib.loads(TINY.read_text())
    mlp.pop("claims", None)
    mlp["run"].update(calls=2000, warmup_calls=20, repeats=2, programs=True)
    mlp["runners"] = [{"id": r} for r in ROWS]
    user = {
        "name": "programs-java-user", "model": USER_MODEL,
        "inputs": USER_INPUTS,
        "run": {"calls": 300, "warmup_calls": 3, "warmup_s": 0, "repeats": 1, "timeout_s": 300},
        "runners": [{"id": r} for r in ROWS],
    }
    return {"mlp": _run(mlp, "programs-java.toml", tmp_path_factory.mktemp("mlp")),
            "user": _run(user, "programs-java-user.toml", tmp_path_factory.mktemp("user"))}


@pytest.mark.parametrize("kind", ["mlp", "user"])
def test_every_java_row_gets_a_maven_program_that_matches(runs: dict[str, Path], kind: str) -> None:
    run = runs[kind]
    made = {r["row"]: r for r in programs.read(run)}
    assert set(made) == set(ROWS)
    for row, r in made.items():
        assert r["status"] == "ok" and r["outputs_ok"], f"{row}: {r['message']}"
        processes = 2 if kind == "mlp" else 1  # as many as the row's repeats
        assert len(r["us_per_call"]) == processes and all(f > 0 for f in r["us_per_call"])
        # the row's own runner beside each program process (its JVM, bridge and PYTORCH_JNI_* as the run's)
        assert len(r["paired_row_us_per_call"]) == processes and all(f > 0 for f in r["paired_row_us_per_call"])
        same = programs.compare(r["us_per_call"], r["paired_row_us_per_call"])  # within one speed mode
        assert {k: r[k] for k in same} == same and r["row_mean_us"] > 0 and r["snippet"], row
        for k in range(processes):
            paired = run / r["folder"] / "paired" / str(k)
            assert (paired / "timings.bin").is_file() and not (paired / "outputs.bin").exists(), row
        assert r["main"] == "src/main/java/Main.java" and r["language"] == "Java"
        folder = run / r["folder"]
        for name in ("run.sh", "pom.xml", "layout.txt", r["main"]):
            assert (folder / name).is_file(), (row, name)
        source = (folder / r["main"]).read_text()
        for harness_part in ("BenchRuntime", "job.json", "package bench", "timings"):  # none of the harness in it
            assert harness_part not in source, (row, harness_part)
        run_sh = (folder / "run.sh").read_text()
        pom = (folder / "pom.xml").read_text()
        if row in BRIDGE_ROWS:  # the bridge the way a user points at it: java.library.path and its variables
            assert '-Djava.library.path="$BRIDGE"' in run_sh and "PYTORCH_JNI_NUM_THREADS=1" in run_sh, row
            assert "<artifactId>pytorch_java_only</artifactId>" in pom, row
        else:
            assert "java.library.path" not in run_sh and "pytorch_java_only" not in pom
            assert "<artifactId>onnxruntime</artifactId>" in pom
    assert (run / "programs" / "java-aoti" / "src/main/java/bridge/AotiModel.java").is_file()
    report = (run / "report.md").read_text()
    assert "## Standalone programs" in report
    for row in ROWS:
        assert f"(programs/{row}/src/main/java/Main.java)" in report
    assert "```java\n" in report  # the fastest Java row's "How to call it", quoted as Java


def test_a_java_program_runs_on_its_own_and_computes_the_reference(runs: dict[str, Path], tmp_path: Path) -> None:
    """The user's model of two inputs: the program's own run.sh (Maven, then java on the bridge) prints its figure,
    and the same build with OUTPUTS appended writes the reference's outputs."""
    run = runs["user"]
    folder = run / "programs" / "java-torchscript-reuse"
    p = subprocess.run(["sh", str(folder / "run.sh")], capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert programs._FIGURE.search(re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)), p.stdout  # Maven's colour resets
    job = json.loads((run / "raw" / "java-torchscript-reuse" / "0" / "job.json").read_text())
    program = programs.PROGRAMS["java-torchscript-reuse"]
    argv = programs.build(program, folder, BUILD_DIR)
    out = tmp_path / "outputs.bin"
    env = {**os.environ, **programs.bridge_env(program, job)}
    p = subprocess.run([*argv, job["model_file"], job["inputs"], str(folder / "layout.txt"), str(out)],
                       capture_output=True, text=True, timeout=300, check=False, env=env)
    assert p.returncode == 0, p.stderr
    reference = np.fromfile(run / "raw" / "reference.bin", dtype="<f4")
    got = np.fromfile(out, dtype="<f4")
    assert got.size == job["input_count"] * job["output_size"] == reference.size
    np.testing.assert_allclose(got, reference, atol=1e-5, rtol=1e-5)


def test_a_bridge_program_on_other_threads_than_its_row_stops(runs: dict[str, Path]) -> None:
    """The bridge takes its threads from the environment when it loads: a program left on other threads than its
    layout's says which variables to set instead of printing a figure for another configuration."""
    run = runs["mlp"]
    job = json.loads((run / "raw" / "java-aoti" / "0" / "job.json").read_text())
    folder = run / "programs" / "java-aoti"
    argv = programs.build(programs.PROGRAMS["java-aoti"], folder, BUILD_DIR)
    env = {**os.environ, **programs.bridge_env(programs.PROGRAMS["java-aoti"], job), "PYTORCH_JNI_NUM_THREADS": "2"}
    p = subprocess.run([*argv, job["model_file"], job["inputs"], str(folder / "layout.txt")], capture_output=True,
                       text=True, timeout=300, check=False, env=env)
    assert p.returncode != 0 and not programs._FIGURE.search(p.stdout)
    assert "set PYTORCH_JNI_NUM_THREADS and PYTORCH_JNI_NUM_INTEROP_THREADS" in p.stderr


def test_java_layout_carries_the_output_size_and_the_onnx_batch_axis() -> None:
    """A Java program's LAYOUT adds the floats of one call's outputs (AotiModel's output buffer); the built-in MLP's
    ONNX file takes [batch, *sample_shape] where the job's call shape of one sample has no batch axis. The row's
    warmup_s follows warmup (0 for a job from before it: the warm-up by count alone)."""
    job = {"calls": 10, "warmup_calls": 2, "warmup_s": 0.25, "input_count": 4, "batch": 1, "threads": 1,
           "interop_threads": 1, "output_size": 3, "model_kind": "mlp",
           "input_tensors": [{"dtype": "float32", "sample_shape": [2], "shape": [2], "offset": 0}]}
    assert programs.layout(job) == "10 2 0.25 4 1 1 1\nfloat32 8 0 2\n"  # C++'s
    assert programs.layout(job, programs.PROGRAMS["java-aoti"]) == "10 2 0.25 4 1 1 1 3\nfloat32 8 0 2\n"
    assert programs.layout(job, programs.PROGRAMS["java-onnxruntime"]) == "10 2 0.25 4 1 1 1 3\nfloat32 8 0 1 2\n"
    user = {**job, "model_kind": "factory"}
    assert programs.layout(user, programs.PROGRAMS["java-onnxruntime"]).endswith("float32 8 0 2\n")
    old = {k: v for k, v in job.items() if k != "warmup_s"}
    assert programs.layout(old).startswith("10 2 0.0 4 ")


@pytest.mark.parametrize("kind", ["mlp", "user"])
def test_the_optimized_row_runs_the_reuse_program_with_the_graph_optimizer_on(runs: dict[str, Path],
                                                                             kind: str) -> None:
    """java-torchscript-optimized's job sets graph_optimizer: its program is java-torchscript-reuse's, one build for
    both, run on the bridge with PYTORCH_JNI_GRAPH_OPTIMIZER=1 (run.sh's and the harness's own runs alike), and the
    reuse row's with 0."""
    run = runs[kind]
    program = programs.PROGRAMS["java-torchscript-reuse"]
    folders = {row: run / "programs" / row for row in ("java-torchscript-reuse", "java-torchscript-optimized")}
    assert programs.build(program, folders["java-torchscript-reuse"], BUILD_DIR) == programs.build(
        program, folders["java-torchscript-optimized"], BUILD_DIR)
    for row, on in (("java-torchscript-reuse", "0"), ("java-torchscript-optimized", "1")):
        job = json.loads((run / "raw" / row / "0" / "job.json").read_text())
        assert programs.bridge_env(program, job)["PYTORCH_JNI_GRAPH_OPTIMIZER"] == on, row
        assert f"PYTORCH_JNI_GRAPH_OPTIMIZER={on}" in (folders[row] / "run.sh").read_text(), row
        # the row itself ran with the setting its program is given, and so did its paired processes
        for rep in (run / "raw" / row / "0", folders[row] / "paired" / "0"):
            assert json.loads((rep / "result.json").read_text())["extra"]["graph_optimizer"] == (on == "1"), rep
