"""The README's results section is the project's output: it matches the run it cites, and nothing else moves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness import readme
from harness.errors import UserError
from harness.paths import RESULTS_DIR, ROOT

OTHER = "20261122-024457-vm"  # a second committed run of the default suite, with other figures


def _copy_run(name: str, results: Path, as_name: str = "") -> Path:
    """Only the files the section is made of: the committed ones, never the raw per-call samples."""
    out = results / (as_name or name)
    out.mkdir(parents=True)
    for f in readme.REQUIRED:
        shutil.copy(RESULTS_DIR / name / f, out / f)
    return out


def _status(run_dir: Path, status: str) -> None:
    (run_dir / "status.json").write_text(json.dumps({"status": status, "message": "m"}))


def test_committed_readme_matches_the_run_it_cites() -> None:
    text = (ROOT / "README.md").read_text()
    run = readme.cited_run(text)
    assert run is not None, "README.md's results section links no results/RUN/report.md"
    assert (RESULTS_DIR / run).is_dir(), f"README.md cites results/{run}, which is not in the repository"
    assert readme.section(text) == readme.render_section(RESULTS_DIR / run), (
        f"README.md's results section is stale: run `.venv/bin/invoke readme --run {run}`")


def test_rewrite_changes_only_the_section(tmp_path: Path) -> None:
    original = (ROOT / "README.md").read_text()
    path = tmp_path / "README.md"
    path.write_text(original)
    path.chmod(0o644)
    run_dir = _copy_run(OTHER, tmp_path / "results")
    assert readme.rewrite(path, run_dir)
    new = path.read_text()
    assert readme.section(new) == readme.render_section(run_dir) != readme.section(original)
    assert readme.cited_run(new) == OTHER
    before, after = original.split(readme.START), new.split(readme.START)
    assert before[0] == after[0] and before[1].split(readme.END)[1] == after[1].split(readme.END)[1]
    assert path.stat().st_mode & 0o777 == 0o644
    assert not readme.rewrite(path, run_dir)
    assert path.read_text() == new


def test_newest_run_skips_what_it_cannot_describe(tmp_path: Path) -> None:
    results = tmp_path / "results"
    good = _copy_run(OTHER, results)
    _status(_copy_run(OTHER, results, "later"), "incomplete")  # "later" sorts after the timestamp
    coll = results / "zz-collection"
    coll.mkdir()
    (coll / "collection.json").write_text("{}")
    _status(coll, "complete")
    assert readme.newest_run(results) == good
    assert readme.pick_run(None, None, results) == good
    assert readme.pick_run(None, OTHER, results) == good
    with pytest.raises(UserError, match="cites results/gone"):
        readme.pick_run(None, "gone", results)


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and ": " in msg  # the problem, then the fix
    return msg


def test_refusals(tmp_path: Path) -> None:
    results = tmp_path / "results"
    path = tmp_path / "README.md"
    path.write_text((ROOT / "README.md").read_text())
    before = path.read_text()

    coll = results / "coll"
    coll.mkdir(parents=True)
    (coll / "collection.json").write_text("{}")
    _status(coll, "complete")
    with pytest.raises(UserError) as exc:
        readme.rewrite(path, coll)
    assert "collection" in _one_line(exc)

    unfinished = _copy_run(OTHER, results, "x")
    _status(unfinished, "incomplete")
    with pytest.raises(UserError) as exc:
        readme.rewrite(path, unfinished)
    assert "incomplete, not complete" in _one_line(exc)

    bare = _copy_run(OTHER, results, "y")
    (bare / "summary.json").unlink()
    with pytest.raises(UserError) as exc:
        readme.rewrite(path, bare)
    assert "no summary.json" in _one_line(exc)

    assert path.read_text() == before
    path.write_text(before.replace(readme.END, ""))
    with pytest.raises(UserError) as exc:
        readme.rewrite(path, _copy_run(OTHER, results))
    assert "markers" in _one_line(exc)
    assert readme.cited_run(path.read_text()) is None


def test_run_outside_results_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text((ROOT / "README.md").read_text())
    with pytest.raises(UserError) as exc:
        readme.rewrite(path, _copy_run(OTHER, tmp_path / "elsewhere"))
    assert "results/RUN/report.md" in _one_line(exc)


def test_the_readme_task_is_wired() -> None:
    """`invoke readme` is a task of tasks.py: a bad --run gets the one-line error and exit status 2."""
    import subprocess
    import sys

    from harness.paths import ROOT

    p = subprocess.run([sys.executable, "-m", "invoke", "--search-root", str(ROOT), "readme", "--run", "nope"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 2, p.stderr
    assert "'nope' is not a run folder" in p.stderr
