"""The harness keeps its side of the contract: every job it writes obeys the job schema, every result it
accepts obeys the result schema, and the runtimes' strict integers are the harness's too."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness import contract
from harness.paths import RESULTS_DIR, SUITES_DIR
from harness.run import job_for
from harness.runners import RUNNERS
from harness.suite import Suite
from harness.suite_file import load_suite
from tests.jobs import minimal_result


def _suites() -> list[Suite]:
    out = []
    for path in sorted(SUITES_DIR.glob("*.toml")):
        loaded = load_suite(str(path))
        out.extend(loaded.parts if hasattr(loaded, "parts") else [loaded])
    return out


@pytest.mark.parametrize("suite", _suites(), ids=lambda s: s.name)
def test_every_job_the_harness_writes_obeys_the_schema(suite: Suite, tmp_path: Path) -> None:
    files = {k: tmp_path / "m" / k for k in ("torchscript", "state_dict", "weights")} | {"inputs": tmp_path / "in"}
    if suite.model.is_user:  # its output sizes are learnt when the model is prepared (tests/test_user_models.py)
        suite = dataclasses.replace(suite, model=dataclasses.replace(suite.model, outputs=(1000,)))
    for n, choice in enumerate(suite.runners):
        if RUNNERS[choice.id].cannot_run(suite.model):
            continue  # SKIPPED before any job is written
        out = tmp_path / str(n)
        out.mkdir()
        job = job_for(suite, choice, files, out)
        assert contract.problem("job", job) is None, choice.name


def test_a_result_missing_a_key_or_with_a_float_count_is_refused() -> None:
    good = minimal_result("r")
    assert contract.problem("result", good) is None
    assert contract.problem("result", {k: v for k, v in good.items() if k != "load_ns"}) == (
        "'load_ns' is a required property"
    )
    assert contract.problem("result", {**good, "calls": 1.0}) == "'calls': 1.0 is not of type 'integer'"
    assert contract.problem("result", {**good, "threads": True}) == "'threads': True is not of type 'integer'"
    assert "'speed' was unexpected" in contract.problem("result", {**good, "speed": 1})


def test_the_committed_run_obeys_the_result_schema() -> None:
    """The run the README cites was made by today's runners: every one of its results obeys the schema."""
    runs = sorted(p for p in RESULTS_DIR.glob("*/suite.json"))
    latest = runs[-1].parent
    results = list(latest.glob("raw/*/*/result.json"))
    assert results, latest
    for path in results:
        assert contract.problem("result", json.loads(path.read_text())) is None, path


def test_the_contract_lists_the_registrys_model_kinds() -> None:
    """Model kinds are declared once (harness/model_spec.py, which the registry imports); the job schema,
    which runtimes read, must say the same."""
    from harness.model_spec import MODEL_KINDS

    schema = json.loads((contract.SCHEMAS / "job.schema.json").read_text())
    assert tuple(schema["properties"]["model_kind"]["enum"]) == MODEL_KINDS
