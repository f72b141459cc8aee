"""The JNI bridge (java/bridge) under its JUnit suite, with the unmodified pytorch_java_only jar from Maven."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.java_build import BRIDGE_SOURCE, REPO, build_bridge, java_env, java_toolchain_problem, maven_env

BUILD = REPO / "build"
TESTS_PROJECT = BRIDGE_SOURCE / "tests"
MAVEN_BUILD = BUILD / "java-bridge-tests"
AOTI_CACHE = BUILD / "java-bridge-fixtures"  # the compiled AOTInductor fixture package, made once


@dataclass
class JUnitRun:
    """One `mvn test` of the bridge's JUnit project and the totals of its Surefire reports."""

    returncode: int
    output: str
    tests: int
    failures: int
    errors: int
    skipped: int
    suites: dict[str, int]  # test class → tests run (not skipped)


@pytest.fixture(scope="session")
def bridge_dir() -> Path:
    """The built bridge (cached by a hash of its sources, so only the first session pays)."""
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    return build_bridge(BUILD, BUILD / "logs")


@pytest.fixture(scope="session")
def fixtures_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TorchScript fixture modules and the AOTInductor package written by java/bridge/tests/make_fixtures.py
    (the package compiled once into AOTI_CACHE, keyed by torch's version and the fixture source)."""
    out = tmp_path_factory.mktemp("bridge-fixtures")
    subprocess.run([sys.executable, str(TESTS_PROJECT / "make_fixtures.py"), str(out), str(AOTI_CACHE)], check=True)
    return out


def run_junit(bridge: Path, fixtures: Path, env_vars: dict[str, str], *maven_args: str) -> JUnitRun:
    """`mvn -B -q test` with the bridge on java.library.path and only `env_vars` as PYTORCH_JNI_* settings."""
    reports = MAVEN_BUILD / "surefire-reports"
    shutil.rmtree(reports, ignore_errors=True)
    env = {k: v for k, v in maven_env().items() if not k.startswith("PYTORCH_JNI_")} | env_vars
    cmd = [
        "mvn",
        "-B",
        "-q",
        "test",
        f"-Dbridge.dir={bridge}",
        f"-Dfixtures.dir={fixtures}",
        f"-Dbridge.tests.build={MAVEN_BUILD}",
        *maven_args,
    ]
    proc = subprocess.run(cmd, cwd=TESTS_PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suites = {}
    for report in sorted(reports.glob("TEST-*.xml")):
        suite = ET.parse(report).getroot()
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        suites[suite.get("name", "")] = int(suite.get("tests", "0")) - int(suite.get("skipped", "0"))
    return JUnitRun(proc.returncode, proc.stdout + proc.stderr, **totals, suites=suites)


CONFIGS = {
    "bridge-defaults": {},
    "no_grad-optimizer-on": java_env(1, 1, "no_grad", graph_optimizer=True),
    "grad-enabled-2-threads": java_env(2, 1, "default"),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_bridge_junit_suite_passes(bridge_dir: Path, fixtures_dir: Path, config: str) -> None:
    run = run_junit(bridge_dir, fixtures_dir, CONFIGS[config])
    assert run.returncode == 0, f"Maven failed ({config}):\n{run.output[-4000:]}"
    assert run.tests > 0, f"Surefire reports show no test:\n{run.output[-2000:]}"
    assert run.failures == 0 and run.errors == 0, run.output[-4000:]
    # everything but the bad-configuration test ran, bridge.AotiModel's tests among them
    assert run.tests - run.skipped >= 30
    assert run.suites.get("bridgetest.AotiTest", 0) >= 6, run.suites


def test_invalid_setting_fails_the_load_in_java(bridge_dir: Path, fixtures_dir: Path) -> None:
    run = run_junit(
        bridge_dir,
        fixtures_dir,
        {"PYTORCH_JNI_GRAD_MODE": "fast"},
        "-Dtest=BadConfigTest",
        "-Dexpect.load.failure=PYTORCH_JNI_GRAD_MODE must be inference, no_grad or default",
    )
    assert run.returncode == 0, run.output[-4000:]
    assert run.tests == 1 and run.skipped == 0 and run.failures == 0 and run.errors == 0, run.output[-4000:]


def test_bridge_links_the_wheels_libtorch(bridge_dir: Path) -> None:
    import torch

    lib = bridge_dir / "libpytorch_jni.so"
    dynamic = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=False).stdout
    if not dynamic:
        pytest.skip("readelf not available")
    torch_lib = Path(torch.__file__).parent / "lib"
    assert f"Library runpath: [{torch_lib}]" in dynamic
    assert "libtorch_cpu.so" in dynamic
    fbjni = subprocess.run(["readelf", "-d", str(bridge_dir / "libfbjni.so")], capture_output=True, text=True).stdout
    assert "torch" not in fbjni
