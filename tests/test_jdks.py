"""The JDK as an axis (harness/jdks.py): a suite entry's `jdk` is checked, found on the machine or refused in
one line, used to build and to run its row, and recorded per row (results.csv's `jdk`, the result's extra).

The runs use java-onnxruntime, the Java runner without the bridge, so a JDK-named build costs one Maven
package (cached under build/ once made).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import jdks
from harness.build import build_runner, for_choice
from harness.errors import UserError
from harness.java_build import java_toolchain_problem
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite import RunnerChoice
from harness.suite_file import parse_suite
from tests.conftest import TINY

MISSING = "/nonexistent/jdk-25"


def test_a_jdk_home_that_does_not_exist_is_named_in_one_line() -> None:
    with pytest.raises(jdks.JdkNotFound) as info:
        jdks.find(MISSING)
    message = str(info.value)
    assert message.startswith(f"JDK home {MISSING} does not exist: ") and "\n" not in message


def test_a_version_not_installed_says_how_to_install_it() -> None:
    with pytest.raises(jdks.JdkNotFound) as info:
        jdks.find("99")
    message = str(info.value)
    assert message.startswith("JDK 99 not found on this machine") and "apt-get install openjdk-99" in message
    assert "\n" not in message


def test_a_jre_or_an_old_jdk_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").write_text("")
    with pytest.raises(jdks.JdkNotFound, match=r"has no bin/javac \(a JRE, not a JDK\)"):
        jdks.find(str(tmp_path))
    (tmp_path / "bin" / "javac").write_text("")
    (tmp_path / "release").write_text('JAVA_VERSION="11.0.2"\nIMPLEMENTOR="Test"\n')
    with pytest.raises(jdks.JdkNotFound, match=r"JDK 11\.0\.2 \(Test\) .* is older than JDK 17"):
        jdks.find(str(tmp_path))


@pytest.mark.parametrize(("version", "feature"), [("25.0.3", 25), ("17.0.15", 17), ("1.8.0_402", 8), ("21", 21)])
def test_feature_release(version: str, feature: int) -> None:
    assert jdks.Jdk(Path("/x"), version, version, "v").feature == feature


def test_installed_jdks_are_found() -> None:
    found = jdks.installed()
    on_path = jdks.on_path()
    if on_path is None:
        pytest.skip("no javac on PATH")
    assert on_path.home in {j.home for j in found}
    assert jdks.find(str(on_path.feature)).feature == on_path.feature


def suite_with(runners: list[dict[str, Any]]) -> dict[str, Any]:
    data = tomllib.loads(TINY.read_text())
    data["runners"] = runners
    return data


def test_rows_are_named_after_their_jdk() -> None:
    s = parse_suite(suite_with([
        {"id": "java-onnxruntime", "jdk": "17"},
        {"id": "java-onnxruntime", "jdk": "25"},
        {"id": "java-onnxruntime", "jdk": "/usr/lib/jvm/temurin-25-jdk-amd64"},
        {"id": "java-torchscript", "jdk": "25", "name": "jts-new"},
    ]), "x.toml")
    assert [(c.name, c.jdk) for c in s.runners] == [
        ("java-onnxruntime-jdk17", "17"),
        ("java-onnxruntime-jdk25", "25"),
        ("java-onnxruntime-jdk-temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-25-jdk-amd64"),
        ("jts-new", "25"),
    ]


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ({"id": "java-torchscript", "jdk": "25; rm -rf /"}, r"runners\[0\]\.jdk: .*feature version .* absolute path"),
        ({"id": "java-torchscript", "jdk": "jdk-25"}, r"runners\[0\]\.jdk: "),
        ({"id": "java-torchscript", "jdk": "/opt/$(reboot)"}, r"runners\[0\]\.jdk: "),
        ({"id": "java-torchscript", "jdk": 25}, r"runners\[0\]\.jdk: 25 is not of type 'string'"),
        ({"id": "cpp-api", "jdk": "25"}, r"runners\[0\]\.jdk: cpp-api is not a Java runner: leave jdk out"),
    ],
)
def test_bad_jdk_values_are_refused(entry: dict[str, Any], pattern: str) -> None:
    with pytest.raises(UserError, match=pattern) as info:
        parse_suite(suite_with([entry]), "my.toml")
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def built_ort() -> Any:
    problem = java_toolchain_problem()
    if problem:
        pytest.skip(problem)
    s = parse_suite(suite_with([{"id": "java-onnxruntime"}]), "x.toml")
    b = build_runner(RUNNERS["java-onnxruntime"], s.model, BUILD_DIR)
    assert b.status == "ok", b.reason
    return b


def test_a_missing_jdk_skips_its_row_with_the_reason(built_ort: Any) -> None:
    row = for_choice(built_ort, RunnerChoice("java-onnxruntime", "n/a", 1, "x", jdk=MISSING))
    assert row.status == "skipped" and row.reason.startswith(f"JDK home {MISSING} does not exist")
    assert for_choice(built_ort, RunnerChoice("java-onnxruntime", "n/a", 1, "x")) is built_ort


def test_the_jdk_builds_runs_and_is_recorded(built_ort: Any, tmp_path: Path) -> None:
    """One run: a row on the newest installed JDK and one whose JDK home does not exist."""
    newest = jdks.installed()[0]
    data = suite_with([{"id": "java-onnxruntime", "jdk": str(newest.feature)},
                       {"id": "java-onnxruntime", "jdk": MISSING}])
    data["run"] = {"calls": 200, "warmup_calls": 3, "warmup_s": 0, "repeats": 2, "threads": 1, "interop_threads": 1,
                   "timeout_s": 120}
    run = run_suite(parse_suite(data, "jdks.toml"), tmp_path, BUILD_DIR, quiet=True)
    rows = {r["runner"]: r for r in pd.read_csv(run / "results.csv").to_dict("records")}

    ok = rows[f"java-onnxruntime-jdk{newest.feature}"]
    assert ok["status"] == "ok" and ok["outputs_ok"], ok["message"]
    assert ok["jdk"] == f"{newest.runtime_version} at {newest.home}"
    result = json.loads((run / "raw" / ok["runner"] / "0" / "result.json").read_text())
    assert result["extra"]["java_home"] == str(newest.home)
    assert result["runtime"].endswith(newest.version)
    recorded = {c["name"]: c["jdk"] for c in json.loads((run / "suite.json").read_text())["runners"]}
    assert recorded[ok["runner"]] == str(newest.feature)
    assert any(j.startswith(f"JDK {newest.runtime_version}") for j in json.loads(
        (run / "environment.json").read_text())["jdks"])

    skipped = rows["java-onnxruntime-jdk-jdk-25"]
    assert skipped["status"] == "SKIPPED"
    assert skipped["message"].startswith(f"JDK home {MISSING} does not exist"), skipped["message"]  # builds.json
