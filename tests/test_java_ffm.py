"""java-aoti-ffm (java/runner/AotiFfm.java.j2): the AOTInductor package java-aoti loads, called from Java through
the Foreign Function & Memory API (JDK 22+) instead of the JNI bridge.

End to end through the harness (harness.pipeline.run_suite): the default model (MyNN 2-8-8-1, input [1, 2]) and
a user's factory with two inputs (float32 and int64) and two outputs (float32 and int64, so the outputs are
converted), each verified against the Python reference, and each row's standalone program (java/programs/
AotiFfm.java.j2: the same calls through java.lang.foreign, a Maven project built once for both) with it. The
factory is written to a fixed place under build/ so its AOTInductor package is compiled once and then cached, as
every export is. Without a JDK 22 or newer the row is SKIPPED with the reason; the JDKs found are narrowed with
monkeypatch, never by changing PATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness import jdks, programs
from harness.build import Built, build_runner, for_choice
from harness.model_spec import ModelSpec
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite import RunnerChoice
from harness.suite_file import parse_suite
from tests.conftest import TINY
from tests.jobs import make_job

RUNNER = "java-aoti-ffm"
FIXTURES = BUILD_DIR / "java-ffm-fixtures"  # the factory's fixed place: its export is cached by path and content
FACTORY = textwrap.dedent('''
    import torch


    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x, ids):
            return self.fc(x) + self.embed(ids).sum(1), ids * 2 + 1


    def build():
        torch.manual_seed(0)
        return Two(), (torch.rand(1, 4), torch.randint(0, 10, (1, 3)))
''')
RUN = {"calls": 400, "warmup_calls": 5, "warmup_s": 0, "repeats": 1, "threads": 1, "interop_threads": 1,
       "timeout_s": 120, "programs": False}
WITH_PROGRAM = {**RUN, "programs": True}  # the runs whose row gets its standalone program


def rows(run: Path) -> dict[str, dict[str, Any]]:
    return {r["runner"]: r for r in pd.read_csv(run / "results.csv").to_dict("records")}


def result_of(run: Path, row: str) -> dict[str, Any]:
    return json.loads((run / "raw" / row / "0" / "result.json").read_text())


@pytest.fixture(scope="module")
def default_run(ffm_toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"] = WITH_PROGRAM
    data["runners"] = [{"id": RUNNER}]
    return run_suite(parse_suite(data, "ffm-default.toml"), tmp_path_factory.mktemp("ffm-default"), BUILD_DIR,
                     quiet=True)


def check_program(run: Path) -> dict[str, Any]:
    """The row's program: made, its outputs the reference's, its figure printed; the report links it. Returns its
    record."""
    made = {r["row"]: r for r in programs.read(run)}
    assert set(made) == {RUNNER}
    record = made[RUNNER]
    assert record["status"] == "ok" and record["outputs_ok"], record["message"]
    assert len(record["us_per_call"]) == 1 and record["us_per_call"][0] > 0 and record["snippet"]
    assert len(record["paired_row_us_per_call"]) == 1 and record["paired_row_us"] > 0  # the row's runner beside it
    folder = run / record["folder"]
    source = (folder / record["main"]).read_text()
    for harness_part in ("BenchRuntime", "job.json", "package bench", "bench.libtorch"):
        assert harness_part not in source, harness_part
    assert "import java.lang.foreign.Linker;" in source and "Linker.Option.critical(false)" in source
    assert "<maven.compiler.release>22</maven.compiler.release>" in (folder / "pom.xml").read_text()
    run_sh = (folder / "run.sh").read_text()
    assert "--enable-native-access=ALL-UNNAMED" in run_sh and "-Dlibtorch=" in run_sh
    assert "java.library.path" not in run_sh and "PYTORCH_JNI" not in run_sh  # no JNI bridge
    home = re.search(r"^export JAVA_HOME=(\S+)", run_sh, re.MULTILINE)
    assert home and jdks.read(Path(home.group(1))).feature >= 22, run_sh  # built and run on a JDK 22+
    assert f"(programs/{RUNNER}/src/main/java/Main.java)" in (run / "report.md").read_text()
    return record


def test_default_model_program_matches_the_reference(default_run: Path) -> None:
    """Also run as a user would: no JVM warning on stderr (native access is granted), the figure on stdout."""
    record = check_program(default_run)
    folder = default_run / record["folder"]
    program = programs.PROGRAMS[RUNNER]
    job = json.loads((default_run / "raw" / RUNNER / "0" / "job.json").read_text())
    argv = programs.build(program, folder, BUILD_DIR, jdks.at_least(22, "the test"))
    p = subprocess.run([*argv, job["model_file"], job["inputs"], str(folder / "layout.txt")], capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert programs._FIGURE.search(p.stdout), p.stdout


def test_default_model_matches_the_reference(default_run: Path) -> None:
    row = rows(default_run)[RUNNER]
    assert row["status"] == "ok" and row["outputs_ok"], row["message"]
    result = result_of(default_run, RUNNER)
    assert (result["threads"], result["interop_threads"], result["grad_mode"]) == (1, 1, "no_grad")
    assert result["libtorch_path"].endswith("/torch/lib/libtorch_cpu.so")
    extra = result["extra"]
    assert int(extra["java_runtime_version"].split(".")[0].split("+")[0]) >= 22
    assert "--enable-native-access=ALL-UNNAMED" in extra["jvm_input_arguments"]
    assert extra["ffm_downcalls_per_call"] == 4 and extra["ffm_critical"] is True
    assert extra["aoti_input_shape"] == "[2]" and extra["outputs_converted"] is False
    assert "bridge_path" not in extra  # no JNI bridge loaded
    stdout = (default_run / "raw" / RUNNER / "0" / "stdout.txt")
    assert not stdout.exists() or stdout.read_text() == ""  # e.g. no JVM warning about the model .so


def test_two_input_user_model_matches_the_reference(ffm_toolchain: None, tmp_path: Path) -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    factory = FIXTURES / "two_inputs.py"
    if not factory.is_file() or factory.read_text() != FACTORY:
        factory.write_text(FACTORY)
    data = {"name": "ffm-user", "model": {"name": "Two", "kind": "factory", "path": f"{factory}:build"},
            "inputs": {"count": 8}, "run": {**WITH_PROGRAM, "calls": 200}, "runners": [{"id": RUNNER}]}
    run = run_suite(parse_suite(data, str(tmp_path / "suite.toml")), tmp_path / "results", BUILD_DIR, quiet=True)
    row = rows(run)[RUNNER]
    assert row["status"] == "ok" and row["outputs_ok"], row["message"]
    extra = result_of(run, RUNNER)["extra"]
    assert extra["aoti_input_shape"] == "float32 [1, 4], int64 [1, 3]"
    assert extra["outputs_converted"] is True  # the int64 output, to float32
    assert extra["ffm_downcalls_per_call"] == 2 + 1 + 2 * 2
    check_program(run)  # its int64 output converted to float32 as the runner's is


def test_inference_mode_is_refused_in_one_line(default_run: Path, tmp_path: Path) -> None:
    job = json.loads((default_run / "raw" / RUNNER / "0" / "job.json").read_text())
    built = build_runner(RUNNERS[RUNNER], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)  # cached
    assert built.status == "ok", built.reason
    inputs = np.zeros((4, 2), dtype="<f4")
    path = make_job(tmp_path, RUNNER, Path(job["model_dir"]), inputs, model_file=Path(job["model_file"]).name,
                    layers=(2, 8, 8, 1), calls=4, grad_mode="inference")
    proc = subprocess.run([*built.argv, str(path)], capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ))
    assert proc.returncode == 1
    line = proc.stderr.strip()
    assert "'grad_mode' is inference: InferenceMode has no entry in libtorch's C shim" in line and "\n" not in line


def older_only(monkeypatch: pytest.MonkeyPatch) -> list[jdks.Jdk]:
    """This process sees only the JDKs older than 22 (none may be left): found ones and PATH's alike."""
    old = [j for j in jdks.installed() if j.feature < 22]
    path = jdks.on_path()
    monkeypatch.setattr(jdks, "installed", lambda: list(old))
    monkeypatch.setattr(jdks, "on_path", lambda: path if path is not None and path.feature < 22 else None)
    return old


def test_without_a_jdk_22_the_row_is_skipped_with_the_reason(
    ffm_toolchain: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    older_only(monkeypatch)
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"] = RUN
    data["runners"] = [{"id": RUNNER}, {"id": RUNNER, "jdk": "25"}]
    run = run_suite(parse_suite(data, "ffm-nojdk.toml"), tmp_path, BUILD_DIR, quiet=True)
    found = rows(run)
    for name in (RUNNER, f"{RUNNER}-jdk25"):
        assert found[name]["status"] == "SKIPPED", found[name]
        message = found[name]["message"]
        assert message.startswith("JDK 22 or newer not found on this machine"), message
        assert f"{RUNNER} needs it" in message and "install a JDK 25" in message


def test_a_named_jdk_missing_or_too_old_skips_with_the_reason(
    ffm_toolchain: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: Built = build_runner(RUNNERS[RUNNER], ModelSpec("MyNN", layers=(2, 8, 8, 1)), BUILD_DIR)  # cached
    assert built.status == "ok", built.reason
    old = older_only(monkeypatch)
    row = for_choice(built, RunnerChoice(RUNNER, "no_grad", 10, "x", jdk="25"))
    assert row.status == "skipped" and row.reason.startswith("JDK 25 not found on this machine"), row.reason
    if old:
        row = for_choice(built, RunnerChoice(RUNNER, "no_grad", 10, "y", jdk=str(old[0].feature)))
        assert row.status == "skipped", row.reason
        assert f"is older than JDK 22, which {RUNNER} needs" in row.reason
