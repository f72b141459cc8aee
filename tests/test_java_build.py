"""harness.java_build: toolchain check, PYTORCH_JNI_* mapping, jar build and cache; both Java runners end to end."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import torch

from harness.cmake import BuildError
from harness.java_build import (
    CLASSPATH_FILE,
    JAR,
    JAVA_ARTIFACTS,
    JVM_OPTIONS,
    MAIN_CLASS,
    MAVEN_JVM_OPTIONS,
    REPO,
    RUNNER_SOURCE,
    build_bridge,
    build_runner_jar,
    dependencies_for,
    java_command,
    java_env,
    java_toolchain_problem,
    maven_env,
    runner_build_id,
    unresolved_artifact,
)
from harness.render import environment
from harness.runners import RUNNERS as REGISTRY
from tests.jobs import RESULT_SCHEMA, make_job
from tests.seed_model import MyNN

BUILD = REPO / "build"
RUNNERS = {"java-torchscript": False, "java-torchscript-reuse": True}  # runner: whether it reuses one buffer
SCHEMA_RESOURCE = "src/main/resources/job.schema.json"


def needs_toolchain() -> None:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)


def render(project: Path, runner: str, artifacts: dict[str, str] | None = None) -> Path:
    """Render the runner's registry templates the way the harness does (.j2 rendered, other files copied)."""
    env = environment()
    context: dict[str, Any] = {
        "runner": runner,
        "model": {"name": "mynn", "layers": [2, 8, 8, 1], "activation": "relu"},
        "java_artifacts": artifacts or JAVA_ARTIFACTS,
        "java_dependencies": dependencies_for(REGISTRY[runner].template),
    }
    for template, name in REGISTRY[runner].templates:
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if template.endswith(".j2"):
            content = env.get_template(template).render(context).encode()
        else:
            content = (REPO / template).read_bytes()
        if not target.exists() or target.read_bytes() != content:
            target.write_bytes(content)
    return project


# ---- toolchain ----


def fake_tools(directory: Path, names: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        tool = directory / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


def test_toolchain_problem_names_java_when_path_lacks_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    problem = java_toolchain_problem()
    assert problem is not None and problem.startswith("java not found on PATH")
    assert "apt-get install" in problem and "\n" not in problem


def test_toolchain_problem_names_each_missing_tool(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_tools(tmp_path, ["java"])
    monkeypatch.setenv("PATH", str(tmp_path))
    assert (java_toolchain_problem() or "").startswith("javac not found")
    fake_tools(tmp_path, ["javac"])
    assert (java_toolchain_problem() or "").startswith("mvn not found")
    fake_tools(tmp_path, ["mvn", "cmake"])
    assert (java_toolchain_problem() or "").startswith("c++ not found")
    fake_tools(tmp_path, ["c++"])
    assert java_toolchain_problem() is None


# ---- environment and command ----


def test_java_env_maps_the_job_settings() -> None:
    assert java_env(1, 2, "inference") == {
        "PYTORCH_JNI_NUM_THREADS": "1",
        "PYTORCH_JNI_NUM_INTEROP_THREADS": "2",
        "PYTORCH_JNI_GRAD_MODE": "inference",
        "PYTORCH_JNI_GRAPH_OPTIMIZER": "0",
    }
    assert java_env(4, 1, "no_grad", graph_optimizer=True)["PYTORCH_JNI_GRAPH_OPTIMIZER"] == "1"
    assert java_env(1, 1, "default")["PYTORCH_JNI_GRAD_MODE"] == "default"


@pytest.mark.parametrize(("threads", "interop", "mode"), [(0, 1, "inference"), (1, 0, "inference"), (1, 1, "fast")])
def test_java_env_rejects_bad_settings(threads: int, interop: int, mode: str) -> None:
    with pytest.raises(ValueError):
        java_env(threads, interop, mode)


def test_java_command(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / CLASSPATH_FILE).write_text("/m2/a.jar:/m2/b.jar\n")
    argv = java_command(tmp_path, Path("/bridge"), Path("/jobs/job.json"))
    assert Path(argv[0]).name == "java"
    assert argv[1 : 1 + len(JVM_OPTIONS)] == list(JVM_OPTIONS)
    assert "-Djava.library.path=/bridge" in argv
    assert argv[argv.index("-cp") + 1] == f"{tmp_path / JAR}:/m2/a.jar:/m2/b.jar"
    assert argv[-2:] == [MAIN_CLASS, "/jobs/job.json"]


def test_maven_runs_on_c1_and_a_users_maven_opts_win(monkeypatch: pytest.MonkeyPatch) -> None:
    """Maven's own JVM gets MAVEN_JVM_OPTIONS first, so a user's MAVEN_OPTS (read after them) still decide."""
    monkeypatch.delenv("MAVEN_OPTS", raising=False)
    assert maven_env()["MAVEN_OPTS"] == MAVEN_JVM_OPTIONS and "-XX:TieredStopAtLevel=1" in MAVEN_JVM_OPTIONS
    monkeypatch.setenv("MAVEN_OPTS", "-Xmx1g -XX:TieredStopAtLevel=4")
    assert maven_env()["MAVEN_OPTS"] == f"{MAVEN_JVM_OPTIONS} -Xmx1g -XX:TieredStopAtLevel=4"
    assert maven_env()["PATH"] == os.environ["PATH"]


def test_unresolved_artifact_is_read_from_maven_output() -> None:
    online = (
        "[ERROR] Failed to execute goal on project x: Could not resolve dependencies for project bench:x:jar:1: "
        "Could not find artifact org.pytorch:pytorch_java_only:jar:2.1.0 in central (https://repo) -> [Help 1]"
    )
    cached = "[ERROR] ... Failure to find org.pytorch:pytorch_java_only:jar:2.1.0 in https://repo was cached"
    offline = (
        "Cannot access central (https://repo) in offline mode and the artifact "
        "com.google.code.gson:gson:jar:9.9 has not been downloaded from it before."
    )
    previous = (
        "Could not resolve dependencies for project bench:x:jar:1: org.pytorch:pytorch_java_only:jar:2.1.0 "
        "was not found in https://repo during a previous attempt. This failure was cached"
    )
    plugin = "Plugin org.apache.maven.plugins:maven-jar-plugin:9.9 or one of its dependencies could not be resolved"
    assert unresolved_artifact(online) == "org.pytorch:pytorch_java_only:jar:2.1.0"
    assert unresolved_artifact(cached) == "org.pytorch:pytorch_java_only:jar:2.1.0"
    assert unresolved_artifact(offline) == "com.google.code.gson:gson:jar:9.9"
    assert unresolved_artifact(previous) == "org.pytorch:pytorch_java_only:jar:2.1.0"
    assert unresolved_artifact(plugin) == "org.apache.maven.plugins:maven-jar-plugin:9.9"
    assert unresolved_artifact("[ERROR] COMPILATION ERROR") is None


# ---- the runner jar ----


def test_runner_jar_builds_then_comes_from_cache(tmp_path: Path) -> None:
    needs_toolchain()
    project = render(tmp_path / "project", "java-torchscript")
    log = tmp_path / "build.log"
    jar = build_runner_jar(project, log)
    assert jar == project / JAR and jar.is_file()
    classpath = (project / CLASSPATH_FILE).read_text()
    for artifact in ("pytorch_java_only-1.13.1.jar", "fbjni-java-only", "nativeloader",
                     "json-schema-validator-3.0.9.jar", "jackson-databind", "slf4j-nop-2.0.20.jar"):
        assert artifact in classpath
    with zipfile.ZipFile(jar) as z:  # the schema inside the jar is docs/schemas', copied by the render step
        assert z.read("job.schema.json") == (REPO / "docs" / "schemas" / "job.schema.json").read_bytes()
        manifest = z.read("META-INF/MANIFEST.MF").decode()
    assert "Bench-Runner: java-torchscript" in manifest
    assert all(f"Bench-Artifact-{k}: {v}" in manifest for k, v in JAVA_ARTIFACTS.items())
    built = (jar.stat().st_mtime_ns, log.stat().st_mtime_ns)

    assert build_runner_jar(project, log) == jar  # unchanged: Maven is not run again
    assert (jar.stat().st_mtime_ns, log.stat().st_mtime_ns) == built

    before = runner_build_id(project)
    source = project / RUNNER_SOURCE
    source.write_text(source.read_text() + "\n// changed\n")
    changed = runner_build_id(project)
    assert changed != before  # any change to pom or source rebuilds
    schema = project / SCHEMA_RESOURCE
    schema.write_text(schema.read_text() + "\n")
    assert runner_build_id(project) != changed  # the common runtime's files and the schema too


def test_unresolvable_artifact_is_named_in_the_error(tmp_path: Path) -> None:
    needs_toolchain()
    project = render(tmp_path / "project", "java-torchscript", {**JAVA_ARTIFACTS, "pytorch_java_only": "2.1.0"})
    log = tmp_path / "build.log"
    with pytest.raises(BuildError) as error:
        build_runner_jar(project, log)
    message = str(error.value)
    assert "org.pytorch:pytorch_java_only" in message and "2.1.0" in message
    assert str(log) in message and "\n" not in message


def test_missing_rendered_source_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="render it first"):
        build_runner_jar(tmp_path, tmp_path / "build.log")


# ---- both runners end to end ----


@pytest.fixture(scope="module")
def java_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bridge, both runner projects built (cached under build/), a traced MyNN and its inputs."""
    needs_toolchain()
    bridge = build_bridge(BUILD, BUILD / "logs")
    projects = {}
    for runner in RUNNERS:
        project = render(BUILD / "test-java-runners" / runner, runner)
        build_runner_jar(project, BUILD / "test-java-runners" / f"{runner}.log")
        projects[runner] = project
    work = tmp_path_factory.mktemp("java-runner")
    torch.manual_seed(0)
    model = MyNN().eval()
    torch.jit.trace(model, torch.zeros(2)).save(str(work / "model.ts.pt"))
    inputs = np.random.default_rng(0).uniform(-10, 10, size=(64, 2)).astype("<f4")
    (work / "inputs.bin").write_bytes(inputs.tobytes())
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy().reshape(-1)
    return {"bridge": bridge, "projects": projects, "work": work, "expected": expected}


def write_job(work: Path, runner: str, grad_mode: str, name: str) -> tuple[Path, dict[str, Any]]:
    """48 calls over the first 48 of the 64 samples, blocks of 8, in 3 rounds (tests/jobs.py)."""
    inputs = np.fromfile(work / "inputs.bin", dtype="<f4").reshape(64, 2)
    path = make_job(work / name, runner, work, inputs, layers=(2, 8, 8, 1), calls=48, warmup=5, block=8,
                    bare_rounds=3, grad_mode=grad_mode)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize("runner", list(RUNNERS))
@pytest.mark.parametrize("grad_mode", ["inference", "no_grad"])
def test_runner_obeys_the_contract(java_setup: dict[str, Any], runner: str, grad_mode: str) -> None:
    work: Path = java_setup["work"]
    job_path, job = write_job(work, runner, grad_mode, f"{runner}-{grad_mode}")
    env = dict(os.environ) | java_env(1, 1, grad_mode)
    argv = java_command(java_setup["projects"][runner], java_setup["bridge"], job_path)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]

    outputs = np.fromfile(job["outputs"], dtype="<f4")
    np.testing.assert_allclose(outputs, java_setup["expected"][:48], rtol=0, atol=1e-5)
    timings = np.fromfile(job["timings"], dtype="<i8")
    warmup = np.fromfile(job["warmup_timings"], dtype="<i8")
    assert timings.shape == (6,) and (timings > 0).all()
    assert warmup.shape == (5,) and (warmup > 0).all()

    result = json.loads(Path(job["result"]).read_text())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert result["runner"] == runner and result["status"] == "ok"
    assert result["runtime"].startswith(("OpenJDK", "Java HotSpot")) or "VM" in result["runtime"]
    assert result["libtorch_version"] == torch.__version__.split("+")[0]
    assert Path(result["libtorch_path"]).name == "libtorch_cpu.so"
    assert Path(result["libtorch_path"]).parent == Path(torch.__file__).parent / "lib"
    assert (result["threads"], result["interop_threads"], result["grad_mode"]) == (1, 1, grad_mode)
    assert (result["calls"], result["warmup_calls"], result["block"]) == (48, 5, 8)
    assert result["bare_calls"] == 48 and len(result["bare_ns"]) == 3 and min(result["bare_ns"]) > 0
    assert result["peak_rss_kb"] > 10_000
    assert result["first_call_ns"] == int(warmup[0]) and result["load_ns"] > 0 and result["timer_overhead_ns"] >= 0
    extra = result["extra"]
    assert any(a.startswith("-Djava.library.path=") for a in extra["jvm_input_arguments"])
    assert extra["pytorch_java_only"] == JAVA_ARTIFACTS["pytorch_java_only"]
    assert extra["json_schema_validator"] == JAVA_ARTIFACTS["json_schema_validator"]
    assert extra["template_runner"] == runner
    assert extra["graph_optimizer"] is False
    assert extra["reuse_buffer"] is RUNNERS[runner]


def test_runner_refuses_a_bridge_configured_otherwise(java_setup: dict[str, Any]) -> None:
    work: Path = java_setup["work"]
    job_path, job = write_job(work, "java-torchscript", "no_grad", "mismatch")
    env = dict(os.environ) | java_env(1, 1, "inference")
    argv = java_command(java_setup["projects"]["java-torchscript"], java_setup["bridge"], job_path)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert "PYTORCH_JNI_GRAD_MODE" in proc.stderr
    assert not Path(job["result"]).exists()
