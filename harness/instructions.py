"""Instructions per call, counted by valgrind's callgrind: a figure that does not move with the machine's noise.

Each runner runs twice, with n and 2n calls; start-up, loading and warm-up cost the same in both, so
(I(2n) - I(n)) / n is the cost of one call alone.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.build import Built
from harness.files import write_json
from harness.run import child_env, job_for, own_temp
from harness.runners import RUNNERS
from harness.suite import RunnerChoice, Suite

TIMEOUT_S = 900.0
WARMUP_CALLS = 10
REPEATS = 3
EXACT_SPREAD = 0.001  # counts whose repeats differ by more than 0.1 % are "not exact" (a JIT compiling)
# A JVM writes its JIT-compiled code into anonymous memory and patches it: valgrind must check for that to run
# it at all. Its compiler threads run beside the calls, so a Java count moves between processes (its spread
# says by how much; over EXACT_SPREAD it is marked not exact).
JAVA_VALGRIND = ("--smc-check=all-non-file",)


class NotMeasured(Exception):
    """Why a figure could not be had, in one line the caller records."""


def n_for(runner_id: str, block: int) -> int:
    """n: 200 calls for Python, 1000 for C++, and 1000 blocks where a block is used (a call too cheap to time).

    A process's count wobbles by ~10,000 instructions (e.g. nth_element over its measured clock costs), so the
    calls must add far more than that: cpp-raw's ~100 instructions a call need n = 1,000,000 to be exact.
    """
    n = 200 if RUNNERS[runner_id].toolchain == "python" else 1000 * block
    return -(-n // block) * block


def valgrind_options(runner_id: str) -> tuple[str, ...]:
    """What valgrind needs beyond --tool=callgrind to run this runner's process."""
    return JAVA_VALGRIND if RUNNERS[runner_id].toolchain == "java" else ()


def parse_total(text: str) -> int:
    """The event total of a callgrind out file: its `totals:` line, else its `summary:` (3.19 writes both)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("totals", "summary") and value.split():
            found[key] = int(value.split()[0])
    if not found:
        raise NotMeasured("callgrind out file has no totals: or summary: line")
    return found.get("totals", found.get("summary", 0))


def _count(argv: list[str], env: dict[str, str], cwd: Path, job: dict[str, Any], out_dir: Path, calls: int,
           options: tuple[str, ...]) -> int:
    """One fresh valgrind process over a job of `calls` calls; its instruction total."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise NotMeasured("not measured: valgrind not found (apt-get install valgrind)")
    tag = str(calls)
    # a warm-up by count alone: one for a time would make each count's instructions depend on valgrind's speed
    spec = dict(job, calls=calls, bare_calls=0, bare_rounds=1, warmup_calls=WARMUP_CALLS, warmup_s=0.0,
                slots=min(calls, job["input_count"] // job["batch"]),
                outputs=str(out_dir / f"outputs.{tag}.bin"), timings=str(out_dir / f"timings.{tag}.bin"),
                warmup_timings=str(out_dir / f"warmup_timings.{tag}.bin"), result=str(out_dir / f"result.{tag}.json"))
    (out_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    spec["artifacts"] = str(out_dir / "artifacts")
    job_path = out_dir / f"job.{tag}.json"
    write_json(job_path, spec)
    out_file = out_dir / f"callgrind.{tag}.out"
    cmd = [valgrind, "--tool=callgrind", *options, f"--callgrind-out-file={out_file}", *argv, str(job_path)]
    stderr = out_dir / f"stderr.{tag}.txt"
    try:
        with (out_dir / f"stdout.{tag}.txt").open("wb") as o, stderr.open("wb") as e, own_temp(env) as env:
            p = subprocess.run(cmd, stdout=o, stderr=e, env=dict(env, PYTHONHASHSEED="0"), cwd=cwd,
                               timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise NotMeasured(f"not measured: no end under valgrind after {TIMEOUT_S:.0f} s ({calls} calls)") from None
    if p.returncode != 0 or not out_file.exists():
        lines = [ln for ln in stderr.read_text(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("==")]
        last = lines[-1].strip()[:300] if lines else f"exit status {p.returncode}"
        raise NotMeasured(f"not measured: runner failed under valgrind ({calls} calls): {last}")
    return parse_total(out_file.read_text(errors="replace"))


def instructions_per_call(argv: list[str], env: dict[str, str], cwd: Path, job: dict[str, Any],
                          out_dir: Path, n: int, options: tuple[str, ...] = ()) -> float:
    """(I(2n) - I(n)) / n with n rounded up to a whole number of the job's blocks; `options`: valgrind's own.

    Both runs get the same inputs, at most n batches of them, so both have the same slots: the per-slot
    set-up and output writing then cancel out too.
    """
    block, batch = int(job["block"]), int(job["batch"])
    n = -(-n // block) * block
    out_dir.mkdir(parents=True, exist_ok=True)
    count = min(int(job["input_count"]), n * batch)
    if len(job["input_tensors"]) == 1:  # one float32 tensor: its first `count` samples, so both runs have n slots
        inputs = out_dir / "inputs.bin"
        with open(job["inputs"], "rb") as f:
            inputs.write_bytes(f.read(count * int(job["sample_size"]) * 4))
        job = dict(job, inputs=str(inputs), input_count=count)
    elif count < int(job["input_count"]):  # several tensors: fewer samples than n calls, so the slots agree anyway
        raise NotMeasured(f"not measured: {job['input_count']} samples of several tensors exceed n = {n} calls")
    return (_count(argv, env, cwd, job, out_dir, 2 * n, options) - _count(argv, env, cwd, job, out_dir, n, options)) / n


def measure_suite(suite: Suite, rows: dict[str, Built], files: dict[str, Path], raw: Path,
                  ok: set[str], say: Callable[[str], None]) -> None:
    """raw/<runner>/instructions.json for each runner in `ok` (`rows`: each row's build), REPEATS fresh
    measurements each."""
    for choice in suite.runners:
        if choice.name in ok:
            measure_runner(suite, choice, rows[choice.name], files, raw / choice.name, say)


def measure_runner(suite: Suite, choice: RunnerChoice, b: Built, files: dict[str, Path], runner_dir: Path,
                   say: Callable[[str], None]) -> None:
    n = n_for(choice.id, choice.block)
    per_call: list[float] = []
    reason: str | None = None
    start = time.perf_counter()
    for k in range(REPEATS):
        say(f"instructions {choice.name} #{k + 1}/{REPEATS} (valgrind, {n} and {2 * n} calls) …")
        out_dir = runner_dir / "instructions" / str(k)
        out_dir.mkdir(parents=True, exist_ok=True)
        job = job_for(suite, choice, files, out_dir)
        env = child_env(choice.threads, b.env_for(suite, choice) if b.env_for else {})
        try:
            per_call.append(instructions_per_call(b.argv, env, b.source_dir or out_dir, job, out_dir, n,
                                                  valgrind_options(choice.id)))
        except NotMeasured as exc:
            reason = str(exc)
            say(f"  [yellow]{choice.name}[/]: {reason}")
            break
    wall = time.perf_counter() - start
    if per_call and reason is None:
        say(f"  {choice.name}: {statistics.median(per_call):,.0f} instructions / call ({wall:.0f} s)")
    write_json(runner_dir / "instructions.json", {
        "per_call": per_call if reason is None else [], "n": n, "wall_s": round(wall, 1), "reason": reason,
    })
