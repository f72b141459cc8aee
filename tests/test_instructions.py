"""Instructions per call under callgrind: deterministic, and the start-up cost cancels out of 2n - n."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.build import build_runner, toolchain_problem
from harness.errors import UserError
from harness.instructions import n_for, parse_total
from harness.overrides import with_overrides
from harness.paths import BUILD_DIR
from harness.run import child_env
from harness.runners import RUNNERS
from harness.suite_file import parse_suite

SAMPLE = """# callgrind format
version: 1
creator: callgrind-3.19.0
events: Ir
summary: 126637
fn=(1) main
16 3
totals: 126637
"""


def test_parse_total_reads_totals_then_summary() -> None:
    assert parse_total(SAMPLE) == 126637
    assert parse_total("events: Ir\nsummary: 42\n") == 42
    with pytest.raises(Exception, match="no totals"):
        parse_total("events: Ir\n")


def test_n_is_whole_blocks() -> None:
    assert n_for("cpp-raw", 1000) == 1_000_000
    assert n_for("cpp-api", 1) == 1000
    assert n_for("python-torchscript", 1) == 200
    assert n_for("python-torchscript", 64) == 256


def test_config_accepts_boolean_refuses_other(suite_dict: dict[str, Any]) -> None:
    assert parse_suite(suite_dict, "x.toml").run.instructions is False
    suite_dict["run"]["instructions"] = True
    assert parse_suite(suite_dict, "x.toml").run.instructions is True
    suite_dict["run"]["instructions"] = "yes"
    with pytest.raises(UserError, match=r"^my\.toml: run\.instructions: .*give a value of type boolean") as info:
        parse_suite(suite_dict, "my.toml")
    assert "\n" not in str(info.value)


def test_override_flag(suite_dict: dict[str, Any]) -> None:
    assert with_overrides(parse_suite(suite_dict, "x.toml"), instructions=True).run.instructions is True


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (apt-get install valgrind)")
def test_cpp_raw_is_deterministic(tmp_path: Path) -> None:
    from harness.instructions import instructions_per_call

    problem = toolchain_problem(RUNNERS["cpp-raw"])
    if problem:
        pytest.skip(f"cpp-raw cannot be built here: {problem}")
    from tests.test_cpp_runners import SPEC, _job

    built = build_runner(RUNNERS["cpp-raw"], SPEC, BUILD_DIR)
    assert built.status == "ok", built.reason
    rng = np.random.default_rng(0)
    sizes = list(zip(SPEC.layers[:-1], SPEC.layers[1:], strict=True))
    weights = np.concatenate([rng.standard_normal(o * i + o) for i, o in sizes]).astype("<f4")
    weights.tofile(tmp_path / "weights.bin")
    x = rng.uniform(-10, 10, size=(64, 2)).astype("<f4")
    job = json.loads(_job(tmp_path / "job", "cpp-raw", tmp_path / "weights.bin", x, block=1000, calls=1000)
                     .read_text())
    cwd = built.source_dir or tmp_path
    n = n_for("cpp-raw", 1000)
    first = instructions_per_call(built.argv, child_env(1, {}), cwd, job, tmp_path / "a", n)
    second = instructions_per_call(built.argv, child_env(1, {}), cwd, job, tmp_path / "b", n)
    assert first > 0 and second > 0
    assert abs(first - second) / first < 0.001, (first, second)
    total = parse_total((tmp_path / "a" / f"callgrind.{n}.out").read_text())
    assert first * 100 < total and first < total / n, (first, total)  # start-up and warm-up cancelled out
    print(f"cpp-raw: {first:,.1f} and {second:,.1f} instructions / call; one run of {n} calls: {total:,}")


def test_quality_cell_says_not_exact_over_a_tenth_of_a_percent() -> None:
    import pandas as pd

    from harness.report import _instructions_cell

    def cell(spread: float) -> str:
        return _instructions_cell(pd.Series({"instructions_per_call": 62389.0, "instructions_spread": spread}))

    assert cell(0.0005) == "62,389"
    assert cell(0.002) == "62,389 (not exact)"
    assert _instructions_cell(pd.Series({"instructions_per_call": float("nan"), "instructions_note": "JIT"})) \
        == "not measured"


def test_a_java_runner_is_measured_with_the_jit_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Java is measured, not refused: valgrind gets --smc-check for the JIT's code, C++ and Python do not."""
    import subprocess

    from harness import instructions

    seen: list[list[str]] = []

    def fake_run(cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        seen.append(cmd)
        out = next(a.split("=", 1)[1] for a in cmd if a.startswith("--callgrind-out-file="))
        calls = json.loads(Path(cmd[-1]).read_text())["calls"]
        Path(out).write_text(f"totals: {1_000_000 + 250 * calls}\n")
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(instructions.shutil, "which", lambda _: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions.subprocess, "run", fake_run)
    (tmp_path / "inputs.bin").write_bytes(np.zeros(8 * 2, dtype="<f4").tobytes())
    job = {"runner": "a-row-name", "block": 1, "batch": 1, "input_count": 8, "sample_size": 2,
           "inputs": str(tmp_path / "inputs.bin"), "input_tensors": [{"dtype": "float32"}]}
    for rid, expected in (("java-torchscript", ["--smc-check=all-non-file"]), ("cpp-api", [])):
        seen.clear()
        per_call = instructions.instructions_per_call(["runner"], {}, tmp_path, job, tmp_path / rid, 100,
                                                      instructions.valgrind_options(rid))
        assert per_call == 250.0
        assert [c[1:-2][1:-1] for c in seen] == [expected, expected]  # between --tool and --callgrind-out-file


def test_counts_that_straddle_zero_are_not_exact(tmp_path: Path) -> None:
    """A JIT's repeats can come out -237,130, -14,139 and 79,527: the figure must never read as exact."""
    import pandas as pd

    from harness.collect import instructions_of
    from harness.report import _instructions_cell

    path = tmp_path / "instructions.json"
    path.write_text(json.dumps({"per_call": [-237129.6, -14138.8, 79527.3], "n": 1000, "wall_s": 1.0}))
    got = instructions_of(path)
    assert got["instructions_per_call"] == -14138.8 and got["instructions_spread"] > 20
    assert _instructions_cell(pd.Series(got)) == "-14,139 (not exact)"
    path.write_text(json.dumps({"per_call": [97.0, 97.0, 97.0], "n": 1000, "wall_s": 1.0}))
    assert instructions_of(path)["instructions_spread"] == 0.0
