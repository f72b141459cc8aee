"""The Python rows' standalone programs beyond eager, TorchScript and AOTInductor (harness/programs.py,
python/programs/): scripted, frozen, lite (both .ptl formats), torch.compile, dynamic int8, ONNX Runtime and the
ExportedProgram, on the tiny model and, for the runners that take one, on a user's model of two inputs of two
dtypes. Each makes the call its row's timed loop makes, computes the reference's outputs and prints its µs per
call; how far that is from its row's is the report's fidelity table, not a pass/fail test here."""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness import programs
from harness.paths import BUILD_DIR
from harness.pipeline import run_suite
from harness.runners import RUNNERS
from harness.suite_file import parse_suite
from tests.conftest import TINY
from tests.tiny import USER_INPUTS, USER_MODEL

# python-lite-flatbuffer: python-lite's build and program, on the FlatBuffer .ptl
ROWS = ["python-torchscript-scripted", "python-torchscript-frozen", "python-lite", "python-lite-flatbuffer",
        "python-compile", "python-quant-dynamic", "python-onnxruntime", "python-export"]
USER = {
    "name": "programs-python-user", "model": USER_MODEL,
    "inputs": USER_INPUTS,
    "run": {"calls": 300, "warmup_calls": 3, "warmup_s": 0, "repeats": 1, "timeout_s": 300},
}
USER_SPEC = parse_suite({**USER, "runners": [{"id": ROWS[0]}]}, "programs-python-user.toml").model
# the rows whose runner takes a user's model, as the registry says (a refused one is SKIPPED in a run)
USER_ROWS = [r for r in ROWS if RUNNERS[r].cannot_run(USER_SPEC) is None]


def _suites() -> dict[str, tuple[dict[str, Any], str]]:
    mlp = tomllib.loads(TINY.read_text())
    mlp.pop("claims", None)
    mlp["run"].update(calls=500, warmup_calls=20, repeats=1, programs=True)
    mlp["runners"] = [{"id": r} for r in ROWS]
    return {"mlp": (mlp, "programs-python.toml"),
            "user": ({**USER, "runners": [{"id": r} for r in USER_ROWS]}, "programs-python-user.toml")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both runs with one TMPDIR of their own (the "tmp" entry): what torch.compile's runner and program leave
    there. Inductor precompiles a header once into its default folder under TMPDIR, so one folder for both runs
    builds it once."""
    tmp = tmp_path_factory.mktemp("tmpdir")
    made = {"tmp": tmp}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp))
        mp.setattr(tempfile, "tempdir", None)  # this process's own choice, read again and put back after
        for kind, (data, name) in _suites().items():
            made[kind] = run_suite(parse_suite(data, name), tmp_path_factory.mktemp(kind), BUILD_DIR, quiet=True)
    return made


def _row(run: Path, row: str) -> dict[str, Any]:
    """The row's line of results.csv; a row the harness could not run here skips with the harness's reason."""
    df = pd.read_csv(run / "results.csv", keep_default_na=False)
    line = df[df["runner"].eq(row)].to_dict("records")
    assert line, f"{row} is not in the run"
    if line[0]["status"] == "SKIPPED":
        pytest.skip(f"{row}: {line[0]['message']}")
    assert line[0]["status"] == "ok" and str(line[0]["outputs_ok"]) == "True", (row, line[0]["message"])
    return line[0]


def test_the_registry_says_which_rows_take_a_users_model() -> None:
    """Every runner here takes a factory but quantize_dynamic's, which quantizes the built-in MLPs' Linear layers."""
    assert set(ROWS) - set(USER_ROWS) == {"python-quant-dynamic"}
    assert RUNNERS["python-quant-dynamic"].cannot_run(USER_SPEC)
    for row in ROWS:
        assert RUNNERS[row].build_id in programs.PROGRAMS, row


@pytest.mark.parametrize(("kind", "row"), [*(("mlp", r) for r in ROWS), *(("user", r) for r in USER_ROWS)])
def test_each_row_gets_a_program_that_matches(runs: dict[str, Path], kind: str, row: str) -> None:
    run = runs[kind]
    _row(run, row)
    made = {r["row"]: r for r in programs.read(run)}
    assert row in made, f"{row} has no program"
    r = made[row]
    assert r["status"] == "ok" and r["outputs_ok"], f"{row}: {r['message']}"
    assert len(r["us_per_call"]) == 1 and r["us_per_call"][0] > 0  # as many processes as the row's repeats
    assert len(r["paired_row_us_per_call"]) == 1 and r["paired_row_us_per_call"][0] > 0
    paired = run / r["folder"] / programs.PAIRED / "0"
    assert (paired / "timings.bin").is_file() and (paired / "result.json").is_file(), row
    folder = run / r["folder"]
    assert (folder / "run.sh").is_file() and r["main"] == "program.py" and r["snippet"], row
    source = (folder / "program.py").read_text()
    assert "runner_common" not in source and "job.json" not in source  # none of the harness in it
    if row == "python-onnxruntime":  # as its runner: ONNX Runtime's figure alone
        assert "import torch" not in source and "from torch" not in source
    assert f"(programs/{row}/program.py)" in (run / "report.md").read_text()


def test_compile_leaves_no_inductor_cache(runs: dict[str, Path]) -> None:
    """python-compile's runner and program each compile into a fresh inductor cache of their own and remove it.
    What stays in their TMPDIR is the header inductor precompiles into its default folder whatever
    TORCHINDUCTOR_CACHE_DIR says (torch._inductor.codecache._HEADER_DIR), made by the row's first process, before
    any program ran, and only reused after."""
    for kind in ("mlp", "user"):
        _row(runs[kind], "python-compile")
        source = (runs[kind] / "programs" / "python-compile" / "program.py").read_text()
        assert source.index('os.environ["TORCHINDUCTOR_CACHE_DIR"] = CACHE') < source.index("\nimport torch\n")
        assert "torch.compile(model.eval())" in source
    tmp = runs["tmp"]
    assert not [p.name for p in tmp.glob("inductor-*")], "a process's own inductor cache was left"
    left = [p for p in tmp.rglob("*") if p.is_file() and "inductor" in str(p.relative_to(tmp))]
    assert all(p.relative_to(tmp).parts[1] == "precompiled_headers" for p in left), left
    runner_done = (runs["mlp"] / "raw" / "python-compile" / "0" / "result.json").stat().st_mtime_ns
    headers = [p for p in left if p.suffix == ".gch"]
    assert all(p.stat().st_mtime_ns <= runner_done for p in headers), "a header made after the row"
