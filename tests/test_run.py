"""A runner that crashes, hangs or lies is recorded as such, and the others still run."""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import pytest

from harness.build import Built
from harness.paths import ROOT
from harness.run import child_env, job_for, own_temp, run_all, timeout_for
from harness.runner_rows import calls_for
from harness.suite import Suite
from harness.suite_file import load_suite
from tests.conftest import TINY
from tests.jobs import minimal_result

# the warm-up record of a runner that did what the job asked (harness/contract.py checks it against the job)
WARMUP = ("'warmup_calls': job['warmup_calls'], 'warmup_s': job['warmup_s'], 'warmup_calls_made': job['warmup_calls'],"
          " 'warmup_ns': int(job['warmup_s'] * 1e9)")
BEHAVIOURS = {
    "segfault": "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)",
    "hang": "import time; time.sleep(600)",
    "sigkill": "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
    "error": (
        "import sys; print('loading', file=sys.stderr); print('model.pt: bad magic', file=sys.stderr); sys.exit(3)"
    ),
    "silent": "pass",
    "good": (
        "import json, sys; job = json.load(open(sys.argv[1]));"
        f"json.dump({{**{minimal_result('x')!r}, 'runner': job['runner'], {WARMUP}}}, open(job['result'], 'w'))"
    ),
    "litter": (  # what AOTInductor's loader does: a folder in the temp folder, left by an exit with no destructor
        "import json, os, sys, tempfile; job = json.load(open(sys.argv[1])); d = tempfile.mkdtemp(prefix='aot');"
        "open(os.path.join(d, 'model.so'), 'w').write('x'); print(d);"
        f"json.dump({{**{minimal_result('x')!r}, 'runner': job['runner'], {WARMUP}}}, open(job['result'], 'w'));"
        "sys.stdout.flush(); os._exit(0)"
    ),
    "litter_hang": (
        "import os, sys, tempfile, time; print(tempfile.mkdtemp(prefix='aot')); sys.stdout.flush(); time.sleep(600)"
    ),
    "half": (  # a result missing keys of the contract: refused by the harness, naming one
        "import json, sys; job = json.load(open(sys.argv[1]));"
        "json.dump({'runner': job['runner'], 'status': 'ok'}, open(job['result'], 'w'))"
    ),
}

# A runner that touches `mb` MB and exits at once, reporting its own VmHWM as every runtime does
# (python/runner_common.py's peak_rss_kb): far too short-lived for the harness's 20 ms sampling.
ALLOCATE = (
    "import json, sys; sys.path.insert(0, {common!r}); from runner_common import peak_rss_kb;"
    "job = json.load(open(sys.argv[1])); block = bytearray(b'x') * ({mb} << 20);"
    "json.dump({{**{result!r}, 'runner': job['runner'], 'peak_rss_kb': peak_rss_kb(), " + WARMUP
    + "}}, open(job['result'], 'w'))"
)


@pytest.fixture
def fake(tmp_path: Path):
    def make(behaviour: str) -> Built:
        script = tmp_path / f"{behaviour}.py"
        script.write_text(BEHAVIOURS[behaviour])
        return Built("x", "ok", argv=[sys.executable, str(script)], source_dir=tmp_path)

    return make


def _run_fakes(tmp_path: Path, fake, plan: list[str], timeout_s: float) -> tuple[dict, dict, Path, Suite]:
    """Each behaviour in `plan` as one row of the tiny suite; the outcomes by row name and the rows by behaviour."""
    suite = load_suite(str(TINY))
    suite = dataclasses.replace(suite, run=dataclasses.replace(suite.run, timeout_s=timeout_s, repeats=1),
                                runners=suite.runners[: len(plan)])
    ids = [c.name for c in suite.runners]  # run_all takes each row's build by row name
    built = {rid: fake(b) for rid, b in zip(ids, plan, strict=True)}
    raw = tmp_path / "raw"
    files = {k: tmp_path / k for k in ("torchscript", "state_dict", "weights", "inputs")}
    outcomes = {o.runner: o for o in run_all(suite, built, files, raw)}
    return outcomes, dict(zip(plan, ids, strict=True)), raw, suite


def test_failures_are_recorded_and_the_rest_runs(tmp_path: Path, fake) -> None:
    # a limit no healthy fake comes near, however loaded the machine: none of these may time out
    plan = ["segfault", "error", "silent", "good", "sigkill", "half"]
    outcomes, by, raw, suite = _run_fakes(tmp_path, fake, plan, timeout_s=120.0)
    assert outcomes[by["segfault"]].status == "failed"
    assert "killed by SIGSEGV" in outcomes[by["segfault"]].message
    assert outcomes[by["error"]].status == "failed"
    assert outcomes[by["error"]].message == "exit status 3: model.pt: bad magic"
    assert outcomes[by["silent"]].message == "exited 0 without writing result.json"
    assert outcomes[by["good"]].status == "ok"
    assert outcomes[by["sigkill"]].message == "killed by SIGKILL"
    assert outcomes[by["half"]].status == "failed"
    assert outcomes[by["half"]].message.startswith("result.json breaks docs/schemas/result.schema.json: 'bare_calls'")
    # every process's output is kept beside its job
    err = raw / by["error"] / "0" / "stderr.txt"
    assert "bad magic" in err.read_text()
    job = json.loads((raw / by["good"] / "0" / "job.json").read_text())
    assert job["calls"] == suite.run.calls and job["threads"] == 1


def test_a_hang_times_out_and_the_next_runner_still_runs(tmp_path: Path, fake) -> None:
    """A 600 s sleep under a 2 s limit is killed as a timeout, far sooner than it would end, and the row after it
    runs. The short limit is the hang's alone to meet: the other row is `pass`, which exits in milliseconds (the
    crashing fakes, whose core dumps may take a while, run under a generous limit above)."""
    outcomes, by, _, _ = _run_fakes(tmp_path, fake, ["hang", "silent"], timeout_s=2.0)
    assert outcomes[by["hang"]].status == "timeout"
    assert outcomes[by["hang"]].wall_s < 10
    assert outcomes[by["silent"]].message == "exited 0 without writing result.json"


def test_what_a_runner_leaves_in_its_temp_folder_is_deleted(tmp_path: Path, fake) -> None:
    """Each process gets a temp folder of its own (TMPDIR), deleted after it ends, even when it skipped its
    destructors (os._exit) or was killed; inductor's compile cache stays where it was, shared by the processes."""
    outcomes, by, _, _ = _run_fakes(tmp_path, fake, ["litter", "litter_hang"], timeout_s=3.0)
    assert [outcomes[by[b]].status for b in ("litter", "litter_hang")] == ["ok", "timeout"]
    for behaviour in ("litter", "litter_hang"):
        made = Path((outcomes[by[behaviour]].dir / "stdout.txt").read_text().strip())
        assert made.name.startswith("aot") and made.parent.name.startswith("torch-call-cost-")
        assert not made.parent.exists()
    with own_temp({}) as env:
        assert Path(env["TMPDIR"]).is_dir()
        assert env["TORCHINDUCTOR_CACHE_DIR"].startswith(tempfile.gettempdir())
        assert not env["TORCHINDUCTOR_CACHE_DIR"].startswith(env["TMPDIR"])
    assert not Path(env["TMPDIR"]).exists()
    with own_temp({"TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}) as env:
        assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path)  # the user's own setting is kept


def test_peak_memory_is_the_runners_own_figure(tmp_path: Path) -> None:
    """64 MB allocated by a process that lives a few ms: its figure is 64 MB over its baseline, within 10 %."""
    suite = load_suite(str(TINY))
    suite = dataclasses.replace(suite, run=dataclasses.replace(suite.run, timeout_s=20.0, repeats=3),
                                runners=suite.runners[:2])
    common = str(ROOT / "python")
    built = {}
    for choice, mb in zip(suite.runners, (0, 64), strict=True):
        script = tmp_path / f"alloc{mb}.py"
        script.write_text(ALLOCATE.format(common=common, mb=mb, result=minimal_result("x")))
        built[choice.name] = Built(choice.id, "ok", argv=[sys.executable, str(script)], source_dir=tmp_path)
    files = {k: tmp_path / k for k in ("torchscript", "state_dict", "weights", "inputs")}
    outcomes = run_all(suite, built, files, tmp_path / "raw")
    assert [o.status for o in outcomes] == ["ok"] * 6
    figures = {}
    for o in outcomes:
        result = json.loads((o.dir / "result.json").read_text())
        figures.setdefault(o.runner, []).append(result["peak_rss_kb"] / 1024)
    base, big = (figures[c.name] for c in suite.runners)
    for b, g in zip(base, big, strict=True):
        assert 5 < b < 64  # an interpreter's own footprint, not the 4 kB of a half-started process
        assert g - b == pytest.approx(64, rel=0.10)


def test_collect_prefers_the_runners_figure_and_falls_back_to_polling() -> None:
    from harness.collect import peak_rss

    result = {"peak_rss_kb": 2048}
    assert peak_rss(result, {"status": "ok", "peak_rss_mb": 0.0039}) == (2.0, "runner")
    assert peak_rss(None, {"status": "failed", "peak_rss_mb": 7.5}) == (7.5, "polled")
    assert peak_rss(None, {"status": "ok", "peak_rss_mb": None}) is None


def test_thread_environment_and_timeout() -> None:
    suite = load_suite(str(TINY))
    env = child_env(2, {"EXTRA": "1"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2" and env["EXTRA"] == "1"
    choice = suite.runners[0]
    assert timeout_for(suite, choice) == 120
    no_limit = dataclasses.replace(suite, run=dataclasses.replace(suite.run, timeout_s=None, calls=1_000_000))
    assert timeout_for(no_limit, choice) > 2000
    # a batch of 4096 samples runs fewer calls, and gets proportionally more time per call
    big = dataclasses.replace(choice, batch=4096)
    per_call = [(timeout_for(no_limit, c) - 120) / (calls_for(no_limit.run, c) + no_limit.run.warmup_calls)
                for c in (choice, big)]
    assert per_call[1] > 10 * per_call[0]


def test_job_describes_shapes_slots_and_options(tmp_path: Path) -> None:
    suite = load_suite(str(TINY))
    files = {"torchscript": tmp_path / "m" / "model.ts.pt", "state_dict": tmp_path / "m" / "model.state.pt",
             "weights": tmp_path / "m" / "weights.bin", "inputs": tmp_path / "inputs.bin"}
    choice = dataclasses.replace(next(c for c in suite.runners if c.id == "cpp-api"), id="cpp-api-vstack",
                                 name="cpp-api-vstack", batch=16, threads=2)
    job = job_for(suite, choice, files, tmp_path)
    assert job["input_shape"] == [16, 2] and job["sample_shape"] == [2] and job["output_shape"] == [1]
    assert job["calls"] == max(suite.run.calls // 16, 100)
    assert job["slots"] == min(job["calls"], suite.inputs.count // 16)
    assert job["options"] == {"input_build": "vstack"} and job["threads"] == 2
    assert job["model_file"] == str(tmp_path / "m" / "weights.bin")
    assert Path(job["artifacts"]).is_dir()
    (tmp_path / "x").mkdir()
    seed = job_for(suite, suite.runners[0], files, tmp_path / "x")
    assert seed["input_shape"] == [2] and seed["batch"] == 1 and seed["slots"] == suite.run.calls
