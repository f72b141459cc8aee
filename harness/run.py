"""Run every (runner, repeat) as a fresh process, interleaved A B C A B C, each under a time limit.

A crash, a non-zero exit or a hang marks that one job FAILED or TIMEOUT; the others go on.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import contract
from harness.build import Built
from harness.files import write_json
from harness.inputs import tensor_offsets
from harness.model_spec import ModelSpec
from harness.runner_rows import calls_for
from harness.runners import RUNNERS
from harness.suite import RunnerChoice, Suite

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass
class Outcome:
    """What one runner process did: status, its message if it failed, its files and its cost."""

    runner: str
    repeat: int
    status: str  # "ok", "failed", "timeout"; "skipped" for a row whose own build is not ready
    message: str = ""
    dir: Path | None = None
    wall_s: float = 0.0
    peak_rss_mb: float | None = None
    result: dict[str, Any] = field(default_factory=dict)


def timeout_for(suite: Suite, choice: RunnerChoice) -> float:
    """The suite's limit, or a generous one from the work asked (2 ms a call of 256 floats, plus start-up and
    twice the warm-up's minimum time).

    The calls are counted twice: the timed loop and the bare pass over the same calls.
    """
    if suite.run.timeout_s is not None:
        return suite.run.timeout_s
    floats = choice.batch * suite.model.sample_size
    work = 2 * calls_for(suite.run, choice) + suite.run.warmup_calls
    return 120.0 + 2 * suite.run.warmup_s + 0.002 * work * max(1.0, floats / 256)


BARE_ROUNDS = 200  # timed runs alternating with bare-pass runs in one process: many short pairs, so a
# change of the machine's speed spoils few of them (cpp-aoti's processes: 1.9-3.7 % with 20, 1.5-2.0 % with 200)


def bare_rounds(blocks: int) -> int:
    """The most rounds, up to BARE_ROUNDS, that split the timed blocks (and so the calls) evenly."""
    return max(r for r in range(1, BARE_ROUNDS + 1) if blocks % r == 0)


def child_env(threads: int, extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment with the thread settings every runtime honours, set the same for all."""
    env = dict(os.environ)
    for name in THREAD_ENV:
        env[name] = str(threads)
    env.update(extra)
    return env


@contextlib.contextmanager
def own_temp(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """`env` with a temporary folder of the process's own as TMPDIR, deleted when the process has ended.

    A runner leaves with os._exit (or is killed), so no destructor runs: AOTInductor's package loader would leave
    the folder it extracted a package to (/tmp/aotinductor_*, 1.5 MB) behind on every run of every process.
    Inductor's compile cache stays where it was (the system's temp folder), shared by the processes as before.
    """
    folder = tempfile.mkdtemp(prefix="torch-call-cost-")
    cache = env.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(tempfile.gettempdir(), f"torchinductor_{_user()}")
    try:
        yield {**env, "TMPDIR": folder, "TORCHINDUCTOR_CACHE_DIR": cache}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _user() -> str:
    """The user name in inductor's default cache folder (torchinductor_<user>)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid_{os.getuid()}"


def input_tensors(model: ModelSpec, count: int, batch: int) -> list[dict[str, Any]]:
    """The job's input_tensors: the built-in kinds' one float32 tensor, or a user's model's tensors in order."""
    if not model.is_user:
        return [{"dtype": "float32", "sample_shape": list(model.sample_shape),
                 "shape": list(model.input_shape(batch)), "offset": 0}]
    offsets, _ = tensor_offsets(model.tensors, count)
    return [{"dtype": t.dtype, "sample_shape": list(t.shape), "shape": list(t.shape), "offset": o}
            for t, o in zip(model.tensors, offsets, strict=True)]


def job_for(suite: Suite, choice: RunnerChoice, files: dict[str, Path], out_dir: Path) -> dict[str, Any]:
    """The job file of docs/runner-contract.md: every path absolute, every value validated."""
    reg = RUNNERS[choice.id]
    model = suite.model
    model_dir = files["torchscript"].parent
    calls = calls_for(suite.run, choice)
    artifacts = out_dir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    return {
        "runner": choice.name,
        "model_kind": model.kind,
        "model_dir": str(model_dir),
        "torchscript": str(files["torchscript"]),
        "model_file": str(model_dir / reg.model_file_for(choice.batch)),
        "state_dict": str(files["state_dict"]),
        "weights": str(files["weights"]),
        "layers": list(model.layers),
        "sample_shape": list(model.sample_shape),
        "output_shape": list(model.output_shape),
        "inputs": str(files["inputs"]),
        "input_count": suite.inputs.count,
        "sample_size": model.sample_size,
        "output_size": model.output_size,
        "batch": choice.batch,
        "input_shape": list(model.input_shape(choice.batch)),
        "input_tensors": input_tensors(model, suite.inputs.count, choice.batch),
        "slots": min(calls, suite.inputs.count // choice.batch),
        "calls": calls,
        "bare_calls": calls,  # the bare pass repeats the timed calls (docs/runner-contract.md)
        "bare_rounds": bare_rounds(calls // choice.block),
        "warmup_calls": suite.run.warmup_calls,
        "warmup_s": float(suite.run.warmup_s),
        "block": choice.block,
        "threads": choice.threads,
        "interop_threads": suite.run.interop_threads,
        "grad_mode": choice.grad_mode,
        "options": dict(reg.options),
        "outputs": str(out_dir / "outputs.bin"),
        "timings": str(out_dir / "timings.bin"),
        "warmup_timings": str(out_dir / "warmup_timings.bin"),
        "artifacts": str(artifacts),
        "result": str(out_dir / "result.json"),
    }


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _peak_rss_mb(pid: int, known: float | None) -> float | None:
    """VmHWM of the process: its own peak (ru_maxrss would carry the parent's from before exec)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return max(known or 0.0, int(line.split()[1]) / 1024)
    except OSError:
        pass
    return known


def run_process(argv: list[str], env: dict[str, str], cwd: Path, out_dir: Path, timeout: float) -> Outcome:
    """Start the runner in its own process group; poll it for its peak RSS until it ends or times out.

    `argv` ends with the job file, the runner's one argument (docs/runner-contract.md): its result is checked
    against it.
    """
    stdout, stderr = out_dir / "stdout.txt", out_dir / "stderr.txt"
    start = time.perf_counter()
    with stdout.open("wb") as out, stderr.open("wb") as err, own_temp(env) as env:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True)
        rss: float | None = None
        try:
            while True:
                rss = _peak_rss_mb(proc.pid, rss)
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
                if pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.perf_counter() - start > timeout:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    wall = time.perf_counter() - start
                    return Outcome("", 0, "timeout", f"no result after {timeout:.0f} s: killed", out_dir, wall)
                time.sleep(0.02)
        except BaseException:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
    wall = time.perf_counter() - start
    code = proc.returncode
    result_path = out_dir / "result.json"
    if code != 0:
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        detail = _last_line(stderr)
        return Outcome("", 0, "failed", f"{how}" + (f": {detail}" if detail else ""), out_dir, wall, rss)
    if not result_path.exists():
        return Outcome("", 0, "failed", "exited 0 without writing result.json", out_dir, wall, rss)
    try:
        result = json.loads(result_path.read_text())
    except json.JSONDecodeError as exc:
        return Outcome("", 0, "failed", f"result.json unreadable: {exc}", out_dir, wall, rss)
    broken = contract.problem("result", result)
    if broken:
        return Outcome("", 0, "failed", f"result.json breaks docs/schemas/result.schema.json: {broken}", out_dir,
                       wall, rss)
    warm = contract.warmup_problem(json.loads(Path(argv[-1]).read_text()), result)  # the job: its one argument
    if warm:
        return Outcome("", 0, "failed", f"result.json breaks the warm-up rule: {warm}", out_dir, wall, rss)
    return Outcome("", 0, "ok", "", out_dir, wall, rss, result)


def run_all(
    suite: Suite,
    rows: dict[str, Built],
    files: dict[str, Path],
    raw_dir: Path,
    on_done: Callable[[Outcome], None] = lambda o: None,
) -> list[Outcome]:
    """Interleave runners within each repeat so slow drifts of the machine hit all of them alike.

    `rows` is each row's own build, by row name (harness/build.py's for_choice: a row naming a JDK has its
    runner built with that JDK); the rows whose build is not ok are not run (builds.json says why).
    """
    outcomes = []
    ready = [c for c in suite.runners if rows[c.name].status == "ok"]
    for k in range(suite.run.repeats):
        for choice in ready:
            b = rows[choice.name]
            timeout = timeout_for(suite, choice)
            out_dir = raw_dir / choice.name / str(k)
            out_dir.mkdir(parents=True, exist_ok=False)
            job = job_for(suite, choice, files, out_dir)
            contract.check_job(job)
            write_json(out_dir / "job.json", job)
            env = child_env(choice.threads, b.env_for(suite, choice) if b.env_for else {})
            o = run_process([*b.argv, str(out_dir / "job.json")], env, b.source_dir or out_dir, out_dir, timeout)
            o.runner, o.repeat = choice.name, k
            write_json(out_dir / "outcome.json", {
                "status": o.status, "message": o.message, "wall_s": round(o.wall_s, 3), "peak_rss_mb": o.peak_rss_mb,
            })
            outcomes.append(o)
            on_done(o)
    return outcomes

