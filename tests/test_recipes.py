"""The recipes suite: every new Python runner end to end, and the verdicts on the sources' claims."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import recipes
from harness.paths import BUILD_DIR, SUITES_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite_file import load_suite, parse_suite

NEW_PYTHON = ["python-torchscript-scripted", "python-torchscript-frozen", "python-lite", "python-compile",
              "python-quant-dynamic", "python-onnxruntime"]

# name → (runner id, grad mode, median µs); the BRIEF.md table's figures, ONNX Runtime guessed fast
BRIEF = {
    "python-eager": ("python-eager", "default", 104.0),
    "python-eager-nograd": ("python-eager", "no_grad", 80.0),
    "python-eager-inference": ("python-eager", "inference", 69.0),
    "python-torchscript": ("python-torchscript", "default", 67.0),
    "python-torchscript-scripted": ("python-torchscript-scripted", "default", 66.0),
    "python-torchscript-frozen": ("python-torchscript-frozen", "default", 38.0),
    "python-lite": ("python-lite", "default", 72.0),
    "python-compile": ("python-compile", "default", 114.0),
    "python-quant-dynamic": ("python-quant-dynamic", "default", 175.0),
    "python-onnxruntime": ("python-onnxruntime", "n/a", 9.0),
    "cpp-api": ("cpp-api", "inference", 15.0),
    "cpp-raw": ("cpp-raw", "n/a", 0.04),
}


def frame(figures: dict[str, tuple[str, str, float]], spread: float = 0.01, **extra: dict[str, Any]) -> pd.DataFrame:
    """A results table as collect writes it: each median with a ±`spread` interval; `extra` per runner name."""
    rows = []
    for name, (rid, grad, median) in figures.items():
        row = {"runner": name, "runner_id": rid, "language": RUNNERS[rid].language, "status": "ok",
               "grad_mode": grad, "median_us": median, "median_ci_low_us": median * (1 - spread),
               "median_ci_high_us": median * (1 + spread), "first_call_us": 20e6 if rid == "python-compile" else 300.0,
               "load_ms": 5.0, "max_abs_err": 0.1 if rid == "python-quant-dynamic" else 1e-6}
        row.update(extra.get(name, {}))
        rows.append(row)
    return pd.DataFrame(rows)


USES_TORCH = {rid: r.uses_torch for rid, r in RUNNERS.items()}


def judge(df: pd.DataFrame, suite: str = "recipes-python", medians: dict[str, list[float]] | None = None,
          ) -> list[dict[str, str]]:
    """The bundled suite's own claims on a synthetic table: tests the claims' data and the evaluator together."""
    return recipes.verdicts(df, medians, load_suite(suite).claims, USES_TORCH)


def verdict_of(rows: list[dict[str, str]], words: str) -> str:
    (row,) = [r for r in rows if words in r["claim"]]
    return row["verdict"]


def test_the_brief_table_gives_the_brief_verdicts() -> None:
    rows = judge(frame(BRIEF))
    assert [r["verdict"] for r in rows] == [
        "holds",  # traced faster than eager
        "holds",  # inference_mode and no_grad faster
        "holds",  # frozen fastest libtorch path from Python (ONNX Runtime is not libtorch)
        "holds",  # lite ≈ traced (72 vs 67 µs: within 10 %)
        "holds",  # compile slower, seconds to compile
        "holds",  # int8 slower
        "holds",  # ONNX Runtime faster than every TorchScript path
        "does not hold",  # the C++ API does not beat ONNX Runtime from Python
        "holds",  # arithmetic is a sliver of the call
    ]
    for r in rows:
        assert set(r) == {"claim", "source", "ours", "verdict", "why"} and all(r.values())
    cpp = rows[7]
    assert "python-onnxruntime" in cpp["ours"] and cpp["why"] == "cpp-api is 1.7× slower than python-onnxruntime."
    assert "python-torchscript 67.0 [66.3–67.7] µs vs python-eager 104 [103–105] µs" in rows[0]["ours"]


def test_claims_that_do_not_hold() -> None:
    figures = dict(BRIEF)
    figures["python-torchscript"] = ("python-torchscript", "default", 120.0)  # traced slower than eager
    figures["python-eager-inference"] = ("python-eager", "inference", 103.0)  # no gain
    figures["python-eager-nograd"] = ("python-eager", "no_grad", 110.0)  # a loss
    figures["python-lite"] = ("python-lite", "default", 240.0)  # lite twice as slow as traced
    figures["python-compile"] = ("python-compile", "default", 50.0)  # compile pays off …
    figures["python-quant-dynamic"] = ("python-quant-dynamic", "default", 60.0)  # int8 faster
    figures["python-onnxruntime"] = ("python-onnxruntime", "n/a", 200.0)  # ORT slowest
    df = frame(figures, **{"python-compile": {"first_call_us": 0.5e6}})  # … and compiles in half a second
    rows = judge(df)
    assert verdict_of(rows, "TorchScript (traced)") == "does not hold"
    assert verdict_of(rows, "inference_mode and no_grad") == "does not hold"
    assert verdict_of(rows, "fastest libtorch path") == "holds"
    assert verdict_of(rows, "lite interpreter") == "does not hold"
    assert verdict_of(rows, "torch.compile") == "does not hold"
    assert verdict_of(rows, "int8") == "does not hold"
    assert verdict_of(rows, "ONNX Runtime") == "does not hold"
    assert verdict_of(rows, "C++ API") == "holds"


def test_mixed_verdicts() -> None:
    figures = dict(BRIEF)
    figures["python-eager-nograd"] = ("python-eager", "no_grad", 102.0)  # within 5 %: no gain
    figures["python-torchscript-scripted"] = ("python-torchscript-scripted", "default", 36.0)  # beats frozen…
    figures["python-compile"] = ("python-compile", "default", 150.0)
    wide = {"python-torchscript-scripted": {"median_ci_low_us": 30.0, "median_ci_high_us": 45.0},  # …within noise
            "python-compile": {"first_call_us": 0.2e6}}
    rows = judge(frame(figures, **wide))
    assert verdict_of(rows, "inference_mode and no_grad") == "mixed"  # inference holds, no_grad does not
    assert verdict_of(rows, "fastest libtorch path") == "mixed"
    assert "does not clearly beat python-torchscript-scripted" in next(r for r in rows if "frozen" in r["claim"])["why"]
    assert verdict_of(rows, "torch.compile") == "mixed"  # slower per call, but no long compile


def test_overlapping_intervals_are_not_a_verdict() -> None:
    figures = {k: BRIEF[k] for k in ("python-eager", "python-torchscript")}
    rows = judge(frame(figures, spread=0.4))[:1]  # the others need runners this table lacks
    assert [r["verdict"] for r in rows] == ["mixed"]
    assert rows[0]["why"] == ("python-torchscript is 1.6× faster than python-eager in median, "
                              "but the ratio's 95 % interval 0.28–1.50 includes 1.")
    no_ci = frame(figures).drop(columns=["median_ci_low_us", "median_ci_high_us"])  # one repeat: no intervals
    assert judge(no_ci)[0]["verdict"] == "holds"
    assert "[" not in judge(no_ci)[0]["ours"]


def test_paired_repeats_decide_what_pooled_intervals_cannot() -> None:
    """The machine's speed drifts between repeats; runners run side by side drift together."""
    figures = {k: BRIEF[k] for k in ("python-eager", "python-torchscript", "python-lite")}
    df = frame(figures, spread=0.4)  # pooled intervals overlap: alone they decide nothing
    steady = {"python-eager": [120.0, 70.0, 104.0], "python-torchscript": [78.0, 45.0, 67.0],
              "python-lite": [80.0, 52.0, 75.0]}
    rows = judge(df, medians=steady)
    assert verdict_of(rows, "TorchScript (traced)") == "holds"  # 0.65, 0.64, 0.64 in every repeat
    assert verdict_of(rows, "lite interpreter") == "mixed"  # 1.03, 1.16, 1.12: not clearly within 10 %
    assert "paired 95 % interval" in next(r for r in rows if "lite" in r["claim"])["why"]
    flipping = dict(steady, **{"python-torchscript": [60.0, 90.0, 67.0]})  # faster, slower, faster
    assert verdict_of(judge(df, medians=flipping), "TorchScript (traced)") == "mixed"
    same = dict(steady, **{"python-torchscript": [119.0, 70.5, 103.0]})
    df_same = frame(dict(figures, **{"python-torchscript": ("python-torchscript", "default", 103.0)}), spread=0.4)
    row = next(r for r in judge(df_same, medians=same) if "traced" in r["claim"])
    assert row["verdict"] == "does not hold" and row["why"] == "python-torchscript is within 5 % of python-eager."


def test_absent_or_failed_runners_make_claims_not_testable() -> None:
    rows = judge(frame({"python-eager": BRIEF["python-eager"]}))
    assert len(rows) == 9 and {r["verdict"] for r in rows} == {"not testable here"}
    assert rows[0]["ours"] == "python-torchscript was not run"
    figures = {k: BRIEF[k] for k in ("python-eager", "python-torchscript", "python-lite", "python-quant-dynamic")}
    df = frame(figures, **{"python-quant-dynamic": {"status": "FAILED", "message": "repeat 0: exit status 1"}})
    quant = next(r for r in judge(df) if "int8" in r["claim"])
    assert quant["verdict"] == "not testable here"
    assert quant["ours"] == "python-quant-dynamic FAILED: repeat 0: exit status 1"
    assert verdict_of(judge(df), "TorchScript (traced)") == "holds"


def test_recipes_suite_is_valid_and_complete() -> None:
    suite = load_suite("recipes-python")
    names = {c.name: (c.id, c.grad_mode) for c in suite.runners}
    assert names["python-eager-nograd"] == ("python-eager", "no_grad")
    assert names["python-eager-inference"] == ("python-eager", "inference")
    assert set(NEW_PYTHON) | {"python-eager", "python-torchscript", "cpp-api", "cpp-raw"} <= set(names)
    assert (suite.run.calls, suite.run.repeats, suite.run.warmup_calls) == (20000, 3, 2000)


@pytest.fixture(scope="module")
def recipes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny recipes-like suite: every new Python runner (torch.compile's cold compile is most of the time)."""
    data = tomllib.loads((SUITES_DIR / "recipes-python.toml").read_text())
    data["run"].update(calls=300, warmup_calls=20, warmup_s=0, repeats=1, timeout_s=300)
    data["runners"] = [r for r in data["runners"] if r["id"].startswith("python-")]
    return run_suite(parse_suite(data, "recipes-tiny.toml"), tmp_path_factory.mktemp("results"), BUILD_DIR,
                     quiet=True)


def test_every_new_runner_runs_and_matches(recipes_run: Path) -> None:
    df = pd.read_csv(recipes_run / "results.csv").set_index("runner")
    assert set(NEW_PYTHON) <= set(df.index)
    bad = df[(df["status"] != "ok") | ~df["outputs_ok"].astype(bool)][["status", "message"]]
    assert bad.empty, bad.to_string()
    assert (df.drop(index="python-quant-dynamic")["max_abs_err"] <= 1e-4).all()
    assert df.loc["python-quant-dynamic", "max_abs_err"] > 1e-4  # int8 really computes something else …
    assert "looser tolerance atol 0.5 + rtol 0.02" in df.loc["python-quant-dynamic", "message"]  # … and says so
    assert (df["threads"] == 1).all() and (df["interop_threads"] == 1).all()
    assert df.loc["python-compile", "first_call_us"] > 100 * df.loc["python-compile", "median_us"]


def test_onnxruntime_runs_without_libtorch(recipes_run: Path) -> None:
    result = json.loads((recipes_run / "raw" / "python-onnxruntime" / "0" / "result.json").read_text())
    assert result["libtorch_path"] is None and result["libtorch_version"] is None
    assert result["extra"]["onnxruntime"] and result["extra"]["providers"] == ["CPUExecutionProvider"]
    assert result["grad_mode"] == "n/a"
    libtorch = json.loads((recipes_run / "raw" / "python-lite" / "0" / "result.json").read_text())
    assert libtorch["libtorch_path"].endswith("libtorch_cpu.so")


def test_report_has_the_verdicts(recipes_run: Path) -> None:
    report = (recipes_run / "report.md").read_text()
    assert "## What the sources claim, and whether it holds here" in report
    for claim in ("TorchScript (traced) from Python", "inference_mode and no_grad", "frozen", "lite interpreter",
                  "torch.compile", "int8", "ONNX Runtime"):
        assert claim in report
    assert "*python-quant-dynamic*: computes with other arithmetic on purpose" in report
    summary = json.loads((recipes_run / "summary.json").read_text())
    assert summary["tolerance"]["per_runner"] == {"python-quant-dynamic": {"atol": 0.5, "rtol": 0.02}}


# ---------------------------------------------------------------------------------------------------------
# Claims of seeds 001-003 on synthetic tables (collect's columns), one verdict each way


def test_op_chain_claims() -> None:
    figures = {"python-eager": ("python-eager", "default", 1740.0),
               "python-torchscript": ("python-torchscript", "default", 900.0),
               "python-torchscript-nnc": ("python-torchscript-nnc", "default", 11.0),
               "python-torchscript-scripted": ("python-torchscript-scripted", "default", 13400.0),
               "python-compile": ("python-compile", "default", 20.0)}
    df = frame(figures, **{"python-torchscript": {"fusion_groups": 0},
                           "python-torchscript-nnc": {"fusion_groups": 1}})
    rows = judge(df, "op-chain")
    assert [r["verdict"] for r in rows] == ["holds"] * 4
    assert "python-torchscript-nnc is 158× faster" in rows[0]["why"] and "off by default on CPU" in rows[1]["why"]
    slow = frame({**figures, "python-torchscript-nnc": ("python-torchscript-nnc", "default", 600.0)})
    assert verdict_of(judge(slow, "op-chain"), "~100×") == "mixed"  # faster, but 2.9x not ~100x
    assert {r["verdict"] for r in judge(df, "mobile")} == {"not testable here"}  # each suite has its own claims


def test_tracing_pitfall_needs_wrong_traced_and_right_scripted_outputs() -> None:
    figures = {"python-eager": ("python-eager", "default", 100.0),
               "python-torchscript": ("python-torchscript", "default", 70.0),
               "python-torchscript-scripted": ("python-torchscript-scripted", "default", 70.0),
               "cpp-torchscript": ("cpp-torchscript", "default", 40.0)}
    wrong = {"status": "FAILED", "outputs_ok": False,
             "message": "repeat 0: outputs wrong: 990 of 2000 outputs differ from the reference"}
    caught = frame(figures, **{"python-torchscript": wrong, "cpp-torchscript": wrong,
                               "python-torchscript-scripted": {"outputs_ok": True}})
    row, refusal = judge(caught, "tracing-pitfall")
    assert row["verdict"] == "holds" and "990 of 2000" in row["ours"]
    assert refusal["verdict"] == "not testable here" and "python-export was not run" in refusal["ours"]
    missed = frame(figures, **{"python-torchscript": {"outputs_ok": True}, "cpp-torchscript": wrong,
                               "python-torchscript-scripted": {"outputs_ok": True}})
    assert judge(missed, "tracing-pitfall")[0]["verdict"] == "does not hold"
    reason = ("cannot export model.b1.pt2: torch.export.export refused the model: GuardOnDataDependentSymNode: "
              "Could not guard on data-dependent expression Eq(u0, 1)")
    refused = frame({**figures, "python-export": ("python-export", "default", 1.0),
                     "cpp-aoti": ("cpp-aoti", "inference", 1.0)},
                    **{n: {"status": "SKIPPED", "message": reason} for n in ("python-export", "cpp-aoti")})
    assert verdict_of(judge(refused, "tracing-pitfall"), "torch.export refuses") == "holds"


def test_cpp_tips_claims() -> None:
    figures = {"cpp-torchscript": ("cpp-torchscript", "default", 25.0), "cpp-api": ("cpp-api", "inference", 10.0),
               "cpp-api-b64": ("cpp-api", "inference", 30.0),
               "cpp-api-vstack": ("cpp-api-vstack", "inference", 90.0),
               "cpp-api-mask": ("cpp-api-mask", "inference", 36.0),
               "cpp-api-index": ("cpp-api-index", "inference", 31.0)}
    batch = {n: {"batch": 64} for n in ("cpp-api-b64", "cpp-api-vstack", "cpp-api-mask", "cpp-api-index")}
    tails = {"cpp-torchscript": {"batch": 1, "p999_us": 200.0, "max_us": 5000.0, "spikes": 40, "calls": 10**6,
                                 "repeats_ok": 3},
             "cpp-api": {"batch": 1, "p999_us": 30.0, "max_us": 300.0, "spikes": 3, "calls": 10**6, "repeats_ok": 3}}
    rows = judge(frame(figures, **batch, **tails), "cpp-tips")
    assert verdict_of(rows, "vstack") == "holds" and verdict_of(rows, "Boolean-mask") == "holds"
    assert verdict_of(rows, "long tail") == "holds"
    calm = {**tails, "cpp-torchscript": {**tails["cpp-torchscript"], "p999_us": 50.0, "max_us": 500.0, "spikes": 1}}
    assert verdict_of(judge(frame(figures, **batch, **calm), "cpp-tips"), "long tail") == "does not hold"


def test_mobile_claims_and_an_unavailable_export() -> None:
    figures = {"python-torchscript": ("python-torchscript", "default", 2000.0),
               "python-torchscript-fused": ("python-torchscript-fused", "default", 1500.0),
               "python-torchscript-cl": ("python-torchscript-cl", "default", 2400.0),
               "python-torchscript-mobile": ("python-torchscript-mobile", "default", math.nan),
               "python-lite": ("python-lite", "default", 2000.0),
               "python-lite-flatbuffer": ("python-lite-flatbuffer", "default", 2000.0),
               "cpp-torchscript": ("cpp-torchscript", "default", 1900.0),
               "cpp-torchscript-fused": ("cpp-torchscript-fused", "default", 1400.0)}
    extra = {"python-torchscript-mobile": {"status": "SKIPPED",
                                           "message": "cannot export model.mobile.pt: no XNNPACK"},
             "python-lite": {"load_ms": 4.0}, "python-lite-flatbuffer": {"load_ms": 1.0}}
    rows = judge(frame(figures, **extra), "mobile")
    assert verdict_of(rows, "fuse_modules") == "holds"
    assert verdict_of(rows, "channels_last") == "does not hold"
    assert verdict_of(rows, "optimize_for_mobile") == "not testable here"
    assert "no XNNPACK" in next(r for r in rows if "optimize_for_mobile" in r["claim"])["ours"]
    assert verdict_of(rows, "FlatBuffer") == "holds"
