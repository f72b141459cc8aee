"""java-aoti-minimal-ffm (java/runner/AotiMinimalFfm.java.j2): cpp-aoti-minimal's package (compiled with
aot_inductor.use_minimal_arrayref_interface) called from Java through the Foreign Function & Memory API (JDK 22+),
one downcall per call into AOTInductorModelRunMinimalArrayrefInterfaceV2 on AOTInductorArrayRefTensor descriptors.

End to end through the harness (harness.pipeline.run_suite): the default model (MyNN 2-8-8-1, input [2]) and the
conformance test's user factory (float32 [1, 4] and int64 [1, 3] in, a tuple of two outputs), each verified
against the Python reference, with each row's standalone program (java/programs/AotiMinimalFfm.java.j2, one Maven
build for both); and the runner's refusals (InferenceMode, a package without the interface, a missing file). The
minimal packages are the ones tests/test_aoti_minimal.py and the conformance tests make (cached in build/: one
AOTInductor compile takes tens of seconds). Without a JDK 22 or newer the tests are skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness import jdks, programs
from harness.build import build_runner
from harness.model_spec import ModelSpec
from harness.models import load_eager, train_and_export
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite_file import load_suite, parse_suite
from tests.conftest import TINY
from tests.jobs import make_job
from tests.tiny import USER_INPUTS, USER_MODEL

RUNNER = "java-aoti-minimal-ffm"
RUN = {"calls": 2000, "warmup_calls": 20, "warmup_s": 0, "repeats": 1, "threads": 1, "interop_threads": 1,
       "timeout_s": 300, "programs": True}


@pytest.fixture(scope="module")
def default_run(ffm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"] = RUN
    data["runners"] = [{"id": RUNNER}]
    return run_suite(parse_suite(data, "minimal-ffm-default.toml"), tmp_path_factory.mktemp("minimal-ffm"),
                     BUILD_DIR, quiet=True)


def _row(run: Path) -> dict[str, Any]:
    return pd.read_csv(run / "results.csv").set_index("runner").loc[RUNNER].to_dict()


def _rep(run: Path) -> Path:
    return run / "raw" / RUNNER / "0"


def _program(run: Path) -> tuple[dict[str, Any], Path]:
    """The run's one program record (harness/programs.py rendered, built, ran and checked it) and its folder."""
    made = programs.read(run)
    assert [r["row"] for r in made] == [RUNNER]
    return made[0], run / made[0]["folder"]


def test_default_model_matches_the_reference(default_run: Path) -> None:
    row = _row(default_run)
    assert row["status"] == "ok" and row["outputs_ok"], row["message"]
    rep = _rep(default_run)
    job = json.loads((rep / "job.json").read_text())
    assert job["model_file"].endswith("model.minimal.b1.pt2") and job["block"] == RUNNERS["cpp-aoti-minimal"].block
    out = np.fromfile(rep / "outputs.bin", dtype="<f4")
    ref = np.fromfile(default_run / "raw" / "reference.bin", dtype="<f4")[: job["slots"]]
    assert out.shape == ref.shape and np.abs(ref).max() > 1  # real outputs, not zeros
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)
    result = json.loads((rep / "result.json").read_text())
    assert (result["threads"], result["interop_threads"], result["grad_mode"]) == (1, 1, "no_grad")
    assert result["libtorch_path"].endswith("/torch/lib/libtorch_cpu.so")
    extra = result["extra"]
    assert int(extra["java_runtime_version"].split(".")[0].split("+")[0]) >= 22
    assert "--enable-native-access=ALL-UNNAMED" in extra["jvm_input_arguments"]
    assert extra["ffm_downcalls_per_call"] == 1 and extra["ffm_critical"] is True
    assert extra["aoti_call"].startswith("AOTInductorModelRunMinimalArrayrefInterfaceV2")
    assert "not a documented public API" in extra["aoti_call"]
    assert extra["output"] == "(float32 [1])" and extra["outputs_converted"] is False
    assert extra["aoti_input_shape"] == "[2]" and extra["aoti_so"].startswith("data/aotinductor/model/")
    assert "bridge_path" not in extra  # no JNI bridge loaded
    stdout = rep / "stdout.txt"
    assert not stdout.exists() or stdout.read_text() == ""  # e.g. no JVM warning about the model .so


def test_default_model_program_matches_the_reference(default_run: Path) -> None:
    record, folder = _program(default_run)
    assert record["status"] == "ok" and record["outputs_ok"], record["message"]
    assert len(record["us_per_call"]) == 1 and record["us_per_call"][0] > 0 and record["snippet"]
    source = (folder / record["main"]).read_text()
    for harness_part in ("BenchRuntime", "job.json", "package bench", "bench.libtorch"):
        assert harness_part not in source, harness_part
    assert "AOTInductorModelRunMinimalArrayrefInterfaceV2" in source and "Linker.Option.critical(false)" in source
    assert "AOTInductorModelContainerRun" not in source and "aoti_torch_new_tensor_handle" not in source
    assert "<maven.compiler.release>22</maven.compiler.release>" in (folder / "pom.xml").read_text()
    run_sh = (folder / "run.sh").read_text()
    assert "--enable-native-access=ALL-UNNAMED" in run_sh and "-Dlibtorch=" in run_sh
    assert "java.library.path" not in run_sh and "PYTORCH_JNI" not in run_sh  # no JNI bridge
    home = re.search(r"^export JAVA_HOME=(\S+)", run_sh, re.MULTILINE)
    assert home and jdks.read(Path(home.group(1))).feature >= 22, run_sh  # built and run on a JDK 22+
    # run as a user would (the build is cached): no JVM warning on stderr, the figure on stdout
    job = json.loads((_rep(default_run) / "job.json").read_text())
    argv = programs.build(programs.PROGRAMS[RUNNER], folder, BUILD_DIR, jdks.at_least(22, "the test"))
    p = subprocess.run([*argv, job["model_file"], job["inputs"], str(folder / "layout.txt")], capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert programs._FIGURE.search(p.stdout), p.stdout


def test_two_input_two_output_user_model_matches_the_reference(ffm_toolchain: None, tmp_path: Path) -> None:
    data = {"name": "minimal-ffm-user", "model": USER_MODEL, "inputs": USER_INPUTS,
            "run": {**RUN, "calls": 200, "warmup_calls": 3}, "runners": [{"id": RUNNER}]}
    run = run_suite(parse_suite(data, "minimal-ffm-user.toml"), tmp_path, BUILD_DIR, quiet=True)
    row = _row(run)
    assert row["status"] == "ok" and bool(row["outputs_ok"]), row["message"]
    rep = _rep(run)
    job = json.loads((rep / "job.json").read_text())
    assert [t["dtype"] for t in job["input_tensors"]] == ["float32", "int64"]
    assert job["output_size"] == 4 + 1 and job["model_file"].endswith("model.minimal.b1.pt2")
    out = np.fromfile(rep / "outputs.bin", dtype="<f4").reshape(job["slots"], 5)
    ref = np.fromfile(run / "raw" / "reference.bin", dtype="<f4").reshape(-1, 5)[: job["slots"]]
    assert np.abs(ref).max() > 0.1
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=1e-4)
    extra = json.loads((rep / "result.json").read_text())["extra"]
    assert extra["output"] == "(float32 [1, 4], float32 [1, 1])"  # both outputs, in the .so's (pytree) order
    assert extra["aoti_input_shape"] == "float32 [1, 4], int64 [1, 3]" and extra["ffm_downcalls_per_call"] == 1
    record, _ = _program(run)
    assert record["status"] == "ok" and record["outputs_ok"], record["message"]


def _refusal(job_dir: Path, model_dir: Path, model_file: str, grad_mode: str = "no_grad") -> tuple[int, str, bool]:
    """The runner on a small job of the default model: exit status, stderr's last line, whether a result was written."""
    built = build_runner(RUNNERS[RUNNER], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)  # cached
    assert built.status == "ok", built.reason
    path = make_job(job_dir, RUNNER, model_dir, np.zeros((4, 2), dtype="<f4"), model_file=model_file,
                    layers=(2, 8, 8, 1), calls=4, grad_mode=grad_mode)
    p = subprocess.run([*built.argv, str(path)], capture_output=True, text=True, timeout=120, check=False)
    lines = p.stderr.strip().splitlines()
    return p.returncode, lines[-1] if lines else "", (job_dir / "result.json").exists()


def test_inference_mode_and_other_packages_are_refused_in_one_line(default_run: Path, tmp_path: Path) -> None:
    """InferenceMode has no C entry point; cpp-aoti's package (made beside the minimal one) has no minimal entry point,
    refused at load as cpp-aoti-minimal refuses it; a missing file names itself."""
    model_dir = Path(json.loads((_rep(default_run) / "job.json").read_text())["model_dir"])
    code, line, wrote = _refusal(tmp_path / "inference", model_dir, "model.minimal.b1.pt2", "inference")
    assert code == 1 and not wrote
    assert "'grad_mode' is inference: InferenceMode has no entry in libtorch's C shim" in line, line
    if (model_dir / "model.b1.pt2").is_file():
        code, line, wrote = _refusal(tmp_path / "plain", model_dir, "model.b1.pt2")
        assert code == 1 and not wrote, line
        assert line.startswith("cannot load AOTInductor package ") and "model.b1.pt2" in line, line
        assert "has no AOTInductorModelRunMinimalArrayrefInterfaceV2" in line, line
        assert "use_minimal_arrayref_interface=True" in line, line
    code, line, wrote = _refusal(tmp_path / "absent", model_dir, "absent.pt2")
    assert code == 1 and not wrote and "cannot load AOTInductor package" in line and "absent.pt2" in line, line


@pytest.mark.parametrize("load", [{"mode": "closed", "callers": 1}, {"mode": "closed", "callers": 2},
                                  {"mode": "poisson", "callers": 2, "rate": 2000.0},
                                  {"mode": "closed", "callers": 2, "noop": True}])
def test_load_job_gives_each_further_caller_a_model_of_its_own(load: dict[str, Any], default_run: Path,
                                                               tmp_path: Path) -> None:
    """BenchRuntime's load phase on this runner: caller 0 calls the loaded model, every further one a model of its own
    (AOTInductorModelCreateV2), as cpp-aoti-minimal does, so the model is shared only with one caller; every output
    of every caller equals its slot's."""
    model_dir = Path(json.loads((_rep(default_run) / "job.json").read_text())["model_dir"])
    built = build_runner(RUNNERS[RUNNER], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)  # cached
    assert built.status == "ok", built.reason
    x = np.random.default_rng(1).uniform(-2, 2, size=(64, 2)).astype(np.float32)
    path = make_job(tmp_path, RUNNER, model_dir, x, model_file="model.minimal.b1.pt2", layers=(2, 8, 8, 1), calls=64,
                    warmup=4, bare_rounds=1, grad_mode="no_grad",
                    override={"bare_calls": 0, "load": {"seed": 3, "duration_s": 0.3,
                                                        "latencies": str(tmp_path / "lat.bin"), **load}})
    p = subprocess.run([*built.argv, str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    rec, lat = result["load"], np.fromfile(tmp_path / "lat.bin", dtype="<i8")
    assert rec["shared_model"] is (load["callers"] == 1) and rec["noop"] is load.get("noop", False)
    assert "every further caller one of its own (AOTInductorModelCreateV2" in rec["note"]
    assert len(rec["counts"]) == load["callers"] and all(c > 0 for c in rec["counts"])
    assert sum(rec["counts"]) == lat.size == rec["issued"] == rec["checked"] and rec["mismatches"] == 0
    suite = load_suite(str(TINY))  # the slots pass's outputs: the eager module's on these inputs
    with torch.no_grad():
        expected = load_eager(suite.model, train_and_export(suite.model, suite.inputs, BUILD_DIR))(
            torch.from_numpy(x)).numpy().reshape(-1)
    np.testing.assert_allclose(np.fromfile(tmp_path / "outputs.bin", dtype="<f4"), expected, atol=1e-5, rtol=1e-5)
