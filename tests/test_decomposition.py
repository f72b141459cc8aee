"""The cost decomposition (harness/decomposition.py, harness/probes.py): the empty native calls, the parts'
arithmetic, which rows are split, and one run of the default model's fastest C++ and Python paths end to end."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from harness import decomposition, probes
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.suite_file import parse_suite
from tests.conftest import TINY


def test_parts_add_up_to_the_row_and_a_negative_part_is_clipped_and_flagged() -> None:
    got = decomposition.parts(1.5, 0.03, 1.0, 0.01)
    assert got["clipped"] == []
    assert got["parts_us"] == pytest.approx({"crossing": 0.03, "framework": 0.97, "operators": 0.49,
                                             "arithmetic": 0.01})
    assert sum(got["parts_us"].values()) == pytest.approx(1.5)
    noisy = decomposition.parts(1.0, 0.03, 1.02, 0.01)  # the one-op row above the row itself
    assert noisy["clipped"] == ["operators"] and noisy["parts_us"]["operators"] == 0.0
    assert decomposition.parts(1.0, None, 0.8, 0.01)["parts_us"]["framework"] is None


def _df(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"runner": rid, "runner_id": rid, "language": lang, "median_us": us, "status": "ok",
                          "outputs_ok": True, "batch": 1, "method": "m", "median_ci_low_us": us,
                          "median_ci_high_us": us} for rid, lang, us in rows])


def test_the_fastest_row_per_language_is_split_and_java_gets_its_other_crossing_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    df = _df([("cpp-raw", "C++", 0.01), ("cpp-aoti", "C++", 1.0), ("cpp-torchscript", "C++", 7.0),
              ("python-aoti-single", "Python", 1.5), ("java-aoti", "Java", 0.9), ("java-onnxruntime", "Java", 2.0),
              ("java-torchscript", "Java", 9.0)])
    assert [r["row"] for r in decomposition.chosen(df)] == ["python-aoti-single", "java-aoti", "cpp-aoti"]
    monkeypatch.setattr(decomposition, "FFM_RUNNERS", ("java-onnxruntime",))  # as if it crossed by FFM
    assert [r["row"] for r in decomposition.chosen(df)] == ["python-aoti-single", "java-aoti", "cpp-aoti",
                                                           "java-onnxruntime"]
    assert decomposition.crossing_of("java-onnxruntime") == "java-ffm"
    assert decomposition.crossing_of("python-aoti-single") == "python-extension"


def test_every_empty_call_is_measured_or_says_why() -> None:
    measured = probes.measure(BUILD_DIR, 1, say=lambda _: None)
    assert set(measured) == set(probes.NAMES)
    for name in ("python-extension", "cpp-call"):  # the toolchains every run here has
        assert measured[name].reason == "" and len(measured[name].ns) == 1, measured[name]
    java = probes.jdks.on_path()
    assert (measured["java-jni"].reason == "") is (java is not None), measured["java-jni"]
    assert (measured["java-ffm"].reason == "") is (probes.ffm_jdk() is not None), measured["java-ffm"]
    for p in measured.values():
        assert all(math.isfinite(v) and v > 0 for v in p.ns), p
        assert bool(p.ns) is not bool(p.reason), p


def test_a_run_splits_its_fastest_paths_with_a_verified_one_op_run(tmp_path: Path) -> None:
    data = tomllib.loads(TINY.read_text())
    data.pop("claims", None)
    data["run"].update(calls=2000, warmup_calls=20, repeats=1, decomposition=True)
    # TorchScript rows: their one-op exports are traced in a second, where an AOTInductor one compiles for tens
    data["runners"] = [{"id": "cpp-raw"}, {"id": "cpp-torchscript"}, {"id": "python-torchscript"}]
    run = run_suite(parse_suite(data, "decomposed.toml"), tmp_path, BUILD_DIR, quiet=True)
    record = json.loads((run / "decomposition.json").read_text())
    by_row = {r["row"]: r for r in record["rows"]}
    assert set(by_row) == {"cpp-torchscript", "python-torchscript"}
    one_op = pd.read_csv(run / "decomposition" / "results.csv")
    assert set(one_op["runner_id"]) == {"cpp-torchscript", "python-torchscript"}
    assert one_op["outputs_ok"].astype(str).eq("True").all()  # the one-op rows verified against their reference
    for r in by_row.values():
        assert r["not_measured"] == {}, r
        assert r["one_op_us"] is not None and r["one_op_us"] > 0
        assert r["parts_us"]["arithmetic"] == pytest.approx(record["floor_us"])
        if not r["clipped"]:
            assert sum(r["parts_us"].values()) == pytest.approx(r["median_us"])
    assert by_row["cpp-torchscript"]["crossing_probe"] == "cpp-call"
    report = (run / "report.md").read_text()
    assert "## Where the time goes" in report and "![where one call's time goes](decomposition.png)" in report
    assert (run / "decomposition.png").stat().st_size > 0
