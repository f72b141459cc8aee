"""A run is self-contained: re-reporting it after the registry and tolerances change gives the same CSV,
summary and verdicts byte for byte, because it is judged with what its folder recorded."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from harness import collect, report, runners, verify
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.suite_file import parse_suite
from tests.conftest import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tomllib.loads(TINY.read_text())
    data["run"].update(calls=300, warmup_calls=20, repeats=3)
    data["runners"] = [{"id": "python-eager"}, {"id": "python-torchscript"}]
    data["claims"] = [{"text": "traced beats eager", "source": "seed 000", "check": "faster",
                       "a": "python-torchscript", "b": "python-eager"}]
    return run_suite(parse_suite(data, "judged.toml"), tmp_path_factory.mktemp("res"), BUILD_DIR, quiet=True)


def _outputs(run: Path) -> tuple[bytes, bytes, list[dict[str, str]]]:
    collect.collect(run)
    report.write_report(run)
    df = collect.pd.read_csv(run / "results.csv")
    return (run / "results.csv").read_bytes(), (run / "summary.json").read_bytes(), report.verdict_rows(run, df)


def test_a_changed_registry_does_not_rejudge_an_old_run(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = json.loads((run_dir / "judged_with.json").read_text())
    assert set(recorded["runners"]) == {"python-eager", "python-torchscript"}
    assert recorded["runners"]["python-torchscript"]["tolerance"] == [verify.ATOL, verify.RTOL]
    assert json.loads((run_dir / "suite.json").read_text())["claims"][0]["check"] == "faster"
    before = _outputs(run_dir)
    changed = dataclasses.replace(runners.RUNNERS["python-torchscript"], method="something else",
                                  tolerance=(1e-30, 0.0), language="Fortran")
    monkeypatch.setitem(runners.RUNNERS, "python-torchscript", changed)
    monkeypatch.setattr(verify, "ATOL", 1e-30)
    monkeypatch.setattr(verify, "RTOL", 0.0)
    assert _outputs(run_dir) == before
    (run_dir / "judged_with.json").unlink()  # without the record, today's registry decides: the CSV changes
    csv, _, _ = _outputs(run_dir)
    assert csv != before[0] and b"Fortran" in csv
