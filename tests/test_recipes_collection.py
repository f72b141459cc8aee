"""The recipes collection end to end, in miniature: every part's runners run, match, and get their verdicts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from harness.paths import BUILD_DIR
from harness.pipeline import run_collection
from harness.suite_file import load_suite
from tests.conftest import TESTS


@pytest.fixture(scope="module")
def collection_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    coll = load_suite(str(TESTS / "suites" / "tiny-recipes.toml"))
    return run_collection(coll, tmp_path_factory.mktemp("results"), BUILD_DIR, quiet=True)


def results(run: Path, part: str) -> pd.DataFrame:
    return pd.read_csv(run / part / "results.csv").set_index("runner")


def ok_and_matching(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"].eq("ok") & df["outputs_ok"].astype(bool)]


def test_collection_runs_every_part_into_one_folder(collection_run: Path) -> None:
    status = json.loads((collection_run / "status.json").read_text())
    assert status["status"] == "complete", status
    names = json.loads((collection_run / "collection.json").read_text())["parts"]
    for name in names:
        assert json.loads((collection_run / name / "status.json").read_text())["status"] == "complete"
        assert (collection_run / name / "report.md").exists()
    report = (collection_run / "report.md").read_text()
    assert "## What the sources claim, and whether it holds here" in report
    for name in names:
        assert f"[{name}]({name}/report.md)" in report


def test_op_chain_runs_everywhere_and_shows_its_graphs(collection_run: Path) -> None:
    df = results(collection_run, "tiny-op-chain")
    assert len(ok_and_matching(df)) == len(df), df[["status", "message"]]
    assert (df["max_abs_err"] == 0).all()  # integer inputs: 100 additions are exact in any order
    assert df.loc["python-torchscript", "graph_nodes"] >= 100  # the trace unrolled the loop
    assert df.loc["python-torchscript-scripted", "graph_nodes"] < 50  # scripting kept it as a loop
    report = (collection_run / "tiny-op-chain" / "report.md").read_text()
    assert "## Appendix: optimized TorchScript graphs" in report and "aten::add" in report
    assert (collection_run / "tiny-op-chain" / "ir" / "python-torchscript.txt").exists()


def test_tracing_pitfall_is_caught_by_the_output_check(collection_run: Path) -> None:
    df = results(collection_run, "tiny-pitfall")
    for traced in ("python-torchscript", "cpp-torchscript"):
        assert df.loc[traced, "status"] == "FAILED"
        assert "outputs wrong" in df.loc[traced, "message"] and "differ from the reference" in df.loc[traced, "message"]
    assert df.loc["python-torchscript-scripted", "outputs_ok"] and df.loc["python-eager", "outputs_ok"]
    report = (collection_run / "report.md").read_text()
    line = next(ln for ln in report.splitlines() if "Tracing silently breaks" in ln)
    assert re.search(r"\|\s*holds\s*\|", line), line


def test_cpp_tips_compute_the_same_outputs(collection_run: Path) -> None:
    df = results(collection_run, "tiny-cpp-tips")
    assert len(ok_and_matching(df)) == len(df), df[["status", "message"]]
    assert (df.loc[["cpp-api-b64", "cpp-api-vstack", "cpp-api-mask", "cpp-api-index"], "batch"] == 64).all()


def test_mobile_recipe_runs_or_says_why_not(collection_run: Path) -> None:
    df = results(collection_run, "tiny-mobile")
    skipped = df[df["status"].eq("SKIPPED")]
    for name, row in skipped.iterrows():
        assert row["message"].startswith("cannot export"), (name, row["message"])
    assert set(skipped.index) <= {"python-torchscript-mobile", "python-torchscript-int8-qnnpack"}
    ran = df.drop(index=skipped.index)
    assert len(ok_and_matching(ran)) == len(ran), ran[["status", "message"]]
    assert ran.loc["python-torchscript-int8", "max_abs_err"] > 1e-4  # int8: other arithmetic, within its tolerance
    assert (ran["load_ms"] > 0).all()


def test_batch_sweep_and_threads(collection_run: Path) -> None:
    df = results(collection_run, "tiny-batch")
    assert len(ok_and_matching(df)) == len(df), df[["status", "message"]]
    assert set(df["batch"]) == {1, 64}
    columns = {"python-torchscript-columns", "java-torchscript-reuse-columns", "cpp-torchscript-columns",
               "cpp-api-columns"}
    assert columns <= set(df["family"])  # samples as columns, in every language, with the same outputs
    report = (collection_run / "tiny-batch" / "report.md").read_text()
    assert "## Per-sample cost against batch size" in report and (collection_run / "tiny-batch" / "batch.png").exists()
    th = results(collection_run, "tiny-threads")
    assert len(ok_and_matching(th)) == len(th), th[["status", "message"]]
    assert th["threads_ok"].all()
    assert th.loc["cpp-api-t2", "threads"] == 2 and th.loc["java-torchscript-t2", "threads"] == 2
    assert "## One thread or more" in (collection_run / "tiny-threads" / "report.md").read_text()
