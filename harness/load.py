"""Many callers at once: the fastest verified path of each language (and the rows [load] lists) under load.

After the run's own rows are verified, each chosen row's runner is started again with load jobs
(docs/runner-contract.md, "Load job"), in <run>/load/<row>/<phase>/:
- threads: N caller threads in one process sharing the one loaded model, calling as fast as they can;
- processes: N single-caller processes started together (ready and go files), calling as fast as they can;
- server: Poisson arrivals at a rate, latency from the scheduled arrival; a search for the highest rate whose
  p99 is within the bound (as LoadGen's FindPeakPerformance: a rate, then halving the interval between the
  highest passing and the lowest failing), then one run at that rate for the full duration, VALID or INVALID.
Every load-phase output is compared by the runtime with its slot's output from the process's own timed pass;
those slots are verified against the reference here, as any row's. The figures go to load.json; harness/
load_stats.py turns them into the report's tables and plot.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import contract, fastest, judged_with, runner_rows, verify
from harness.build import Built
from harness.cmake import BuildError
from harness.collect import tolerance_of
from harness.errors import UserError
from harness.files import write_json
from harness.overrides import with_overrides
from harness.run import Outcome, child_env, job_for, run_process
from harness.suite import LoadSpec, RunnerChoice, Suite
from harness.suite_schema import SCHEMA, validate

FOLDER = "load"
SLOT_CALLS = 1000  # the timed pass before the load phase: the slots whose outputs the load phase is checked on
START_S = 120.0  # a load process's time limit beyond its load phase: start-up, load, the slots pass
GO_WAIT_S = 300.0  # processes that do not all say ready by then: the measurement fails
STEP_DOWN = 0.8  # a peak that fails its full-duration run is tried once more at this share of its rate


def process_wall_s(run_dir: Path, row: str) -> float | None:
    """The shortest wall time of the row's own processes in the run (start-up, load, warm-up, the short timed
    pass): about what a load process of the row takes beyond its load phase, to say how long a phase will take."""
    walls = []
    for f in (run_dir / "raw" / row).glob("*/outcome.json"):
        try:
            walls.append(float(json.loads(f.read_text())["wall_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return min(walls) if walls else None


def jobs_estimate(run_dir: Path, suite: Suite, names: list[str], sub: Suite) -> float:
    """Seconds the offline sub-run's processes take, each about as long as its path's row took in the run (a batch
    row times calls ÷ batch calls, so about as many samples): for the progress line, not a measurement."""
    by_name = {c.name: c for c in suite.runners}
    row_of = {by_name[n].family or n: n for n in reversed(names)}  # the first chosen row of each family
    return sum(process_wall_s(run_dir, row_of[c.family]) or 0.0 for c in sub.runners) * sub.run.repeats


def cores() -> int:
    return len(os.sched_getaffinity(0))


def callers_of(spec: LoadSpec) -> tuple[int, ...]:
    return spec.callers or tuple(range(1, cores() + 1))


def chosen(df: pd.DataFrame, spec: LoadSpec) -> list[str]:
    """The fastest verified row of each language, then the rows [load] lists (each once)."""
    names = [r["runner"] for r in fastest.rows(df)]
    return list(dict.fromkeys([*names, *spec.runners]))


def percentiles_us(latencies_ns: np.ndarray, unissued: int, qs: tuple[float, ...]) -> list[float]:
    """Each q-th percentile in µs as a measured sample (np.percentile's "higher": no interpolation), an unissued
    query counted as +inf; from in-place partitions of one int64 copy, as a C++ or Java run records 10^7 calls,
    which a float copy and a full percentile pass per q took a second or more to reduce, between two processes."""
    n = latencies_ns.size + unissued
    if n == 0:
        return [math.inf] * len(qs)
    at = [math.ceil((n - 1) * (q / 100)) for q in qs]  # np.percentile's "higher" index
    part, start = latencies_ns.copy(), 0
    for i in sorted({i for i in at if i < latencies_ns.size}):  # each in the part above the one before, which
        part[start:].partition(i - start)  # stays in place (faster than one partition at several indices)
        start = i + 1
    return [float(part[i]) / 1000 if i < latencies_ns.size else math.inf for i in at]


class _Jobs:
    """Writes and runs the load jobs of one run: each a fresh process of the row's own build."""

    def __init__(self, suite: Suite, run_dir: Path, rows: dict[str, Built], files: dict[str, Path]) -> None:
        self.suite, self.rows, self.files = suite, rows, files
        self.seed = (suite.load or LoadSpec()).seed
        # the run's reference (a row per sample) and tolerances, as harness/collect.py checks the rows with
        self.reference = np.fromfile(run_dir / "raw" / "reference.bin", dtype="<f4")
        self.judged = judged_with.read(run_dir, [c.id for c in suite.runners])
        self.run_dir = run_dir
        self.startup: dict[str, float] = {}  # per row: the last load process's wall time beyond its load phase

    def startup_s(self, name: str) -> float:
        """A load process's seconds beyond its load phase, as the row's last one took (or its run's processes)."""
        return self.startup.get(name) or process_wall_s(self.run_dir, name) or 0.0

    def expect(self, name: str, seconds: float) -> str:
        """What the progress line says of a phase: its set duration and its expected wall time."""
        return f"{seconds:g} s (about {seconds + self.startup_s(name):.0f} s with start-up)"

    def _job(self, choice: RunnerChoice, out_dir: Path, load: dict[str, Any]) -> dict[str, Any]:
        out_dir.mkdir(parents=True, exist_ok=False)
        job = job_for(self.suite, choice, self.files, out_dir)
        calls = max(choice.block, min(job["calls"], SLOT_CALLS) // choice.block * choice.block)
        job.update(calls=calls, slots=min(calls, job["slots"]), bare_calls=0, bare_rounds=1,
                   load={"seed": self.seed, "latencies": str(out_dir / "latencies.bin"), **load})
        contract.check_job(job)
        write_json(out_dir / "job.json", job)
        return job

    def _start(self, choice: RunnerChoice, out_dir: Path, job: dict[str, Any]) -> Outcome:
        b = self.rows[choice.name]
        env = child_env(choice.threads, b.env_for(self.suite, choice) if b.env_for else {})
        timeout = START_S + float(job["load"]["duration_s"]) * 2
        o = run_process([*b.argv, str(out_dir / "job.json")], env, b.source_dir or out_dir, out_dir, timeout)
        if o.status == "ok":
            self.startup[choice.name] = max(0.0, o.wall_s - float(job["load"]["duration_s"]))
        return o

    def _checked(self, choice: RunnerChoice, o: Outcome, job: dict[str, Any]) -> dict[str, Any]:
        """One process's load record and latencies, or why it has none (its slots must match the reference)."""
        if o.status != "ok":
            return {"problem": f"{o.status}: {o.message}"}
        rec = o.result.get("load")
        if rec is None:
            return {"problem": "the runner ignored the load job: its result has no 'load' record"}
        want = self.reference[: job["slots"] * job["batch"] * job["output_size"]]
        atol, rtol = tolerance_of(choice.id, self.judged)
        check = verify.check_outputs(Path(job["outputs"]), want, atol, rtol)
        if not check.ok:
            return {"problem": f"the slots pass's outputs do not match the reference: {check.message}"}
        if rec["mismatches"]:
            return {"problem": f"{rec['mismatches']} of {rec['checked']} load-phase outputs differ from their slot's"}
        lat = np.fromfile(job["load"]["latencies"], dtype="<i8")
        if lat.size != sum(rec["counts"]) or rec["checked"] != rec["issued"]:
            return {"problem": f"{lat.size} latencies for {sum(rec['counts'])} counted calls, "
                               f"{rec['checked']} of {rec['issued']} checked"}
        return {"record": rec, "latencies": lat}

    def closed(self, choice: RunnerChoice, out_dir: Path, callers: int, processes: int,
               duration_s: float) -> dict[str, Any]:
        """`processes` processes of `callers` threads each, started together, calling as fast as they can."""
        jobs = []
        for p in range(processes):
            d = out_dir / f"p{p}"
            load: dict[str, Any] = {"mode": "closed", "callers": callers, "duration_s": duration_s}
            if processes > 1:
                load.update(ready=str(d / "ready"), go=str(out_dir / "go"))
            jobs.append((d, self._job(choice, d, load)))
        t0 = time.perf_counter()
        parts = self._together(choice, jobs, out_dir / "go")
        return _summary(parts, callers * processes) | {"wall_s": round(time.perf_counter() - t0, 2)}

    def poisson(self, choice: RunnerChoice, out_dir: Path, callers: int, rate: float,
                duration_s: float, noop: bool = False) -> dict[str, Any]:
        """Arrivals at `rate`; with `noop` the runtime's loop runs as it is but each call is its no-op stand-in."""
        load = {"mode": "poisson", "callers": callers, "duration_s": duration_s, "rate": rate, "noop": noop}
        job = self._job(choice, out_dir, load)
        t0 = time.perf_counter()
        parts = self._together(choice, [(out_dir, job)], out_dir / "go")
        return _summary(parts, callers) | {"rate": rate, "wall_s": round(time.perf_counter() - t0, 2)}

    def _together(self, choice: RunnerChoice, jobs: list[tuple[Path, dict[str, Any]]],
                  go: Path) -> list[dict[str, Any]]:
        """Start every process, wait until each says it is ready, then create the go file they wait for."""
        if len(jobs) == 1:
            d, job = jobs[0]
            return [self._checked(choice, self._start(choice, d, job), job)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = [pool.submit(self._start, choice, d, job) for d, job in jobs]
            give_up = time.monotonic() + GO_WAIT_S
            while not all(Path(job["load"]["ready"]).exists() for _, job in jobs):
                if any(f.done() for f in futures) or time.monotonic() > give_up:
                    break  # one ended before the others were ready: it failed; go lets the rest end
                time.sleep(0.01)
            go.write_text("go\n")
            return [self._checked(choice, f.result(), job) for f, (_, job) in zip(futures, jobs, strict=True)]


def _summary(parts: list[dict[str, Any]], callers: int) -> dict[str, Any]:
    """Calls per second over every caller (each process's calls over its own elapsed time), p50/p99 per call."""
    problems = [p["problem"] for p in parts if "problem" in p]
    if problems:
        return {"callers": callers, "ok": False, "problem": problems[0]}
    recs = [p["record"] for p in parts]
    lat = np.concatenate([p["latencies"] for p in parts])
    unissued = sum(r["unissued"] for r in recs)
    p50, p99 = percentiles_us(lat, unissued, (50, 99))
    elapsed = [r["elapsed_ns"] / 1e9 for r in recs]
    return {
        "callers": callers, "ok": True,
        "calls_per_s": sum(r["issued"] / e for r, e in zip(recs, elapsed, strict=True)),
        "issued": sum(r["issued"] for r in recs), "unissued": unissued,
        "elapsed_s": max(elapsed), "checked": sum(r["checked"] for r in recs),
        "p50_us": p50, "p99_us": p99,
        "shared_model": all(r["shared_model"] for r in recs), "note": recs[0].get("note", ""),
    }


def _validity(m: dict[str, Any], spec: LoadSpec) -> tuple[str, str]:
    """LoadGen's rule: VALID when enough queries ran for long enough; else INVALID and why."""
    reasons = []
    queries = m["issued"] + m["unissued"]
    if queries < spec.min_queries:
        reasons.append(f"too few queries ({queries} < {spec.min_queries}): raise the rate or duration_s")
    if m["elapsed_s"] < spec.duration_s * 0.999:
        reasons.append(f"duration too short ({m['elapsed_s']:.2f} s < {spec.duration_s:g} s)")
    return ("INVALID", "; ".join(reasons)) if reasons else ("VALID", "")


def search(try_rate: Callable[[float, float], dict[str, Any]], capacity: float, spec: LoadSpec) -> dict[str, Any]:
    """The highest rate whose p99 is within the bound, then that rate for the full duration.

    Starts at half the closed-loop capacity; a pass raises the lowest known failing rate's half-way point, a
    failure lowers it (the first upper bound is 1.2× capacity, untried). `try_rate(rate, seconds)` measures.
    Near capacity one stall (a VM's, for ms) leaves a backlog a short try may miss and the full duration not: a
    final run over the bound is tried once more at STEP_DOWN of its rate before the result is called INVALID.
    """
    bound = spec.bound_ms * 1000
    passing, failing = 0.0, 1.2 * capacity
    tries = []
    rate = 0.5 * capacity
    for _ in range(spec.search_steps):
        m = try_rate(rate, spec.search_s)
        m["passes"] = bool(m["ok"] and m["p99_us"] <= bound)
        tries.append(m)
        if not m["ok"]:
            break
        if m["passes"]:
            passing = rate
        else:
            failing = rate
        rate = (passing + failing) / 2
    out: dict[str, Any] = {"bound_ms": spec.bound_ms, "capacity_per_s": capacity, "tries": tries}
    if passing == 0:
        broken = tries[-1].get("problem") if tries and not tries[-1]["ok"] else None
        lowest = min(t["rate"] for t in tries)
        out.update(peak_per_s=None, validity="INVALID",
                   reason=broken or f"no rate tried passes p99 ≤ {spec.bound_ms:g} ms (lowest {lowest:,.0f}/s)")
        return out
    final = try_rate(passing, spec.duration_s)
    final["passes"] = bool(final["ok"] and final["p99_us"] <= bound)
    first = None
    if final["ok"] and not final["passes"]:  # a stall the short tries missed: once more, a step lower
        first = out["failed_final"] = final
        passing *= STEP_DOWN
        final = try_rate(passing, spec.duration_s)
        final["passes"] = bool(final["ok"] and final["p99_us"] <= bound)
    validity, reason = _validity(final, spec) if final["ok"] else ("INVALID", final["problem"])
    if first is not None and validity == "VALID":
        reason = (f"{first['rate']:,.0f}/s went over the bound for the full duration (p99 {first['p99_us']:.0f} µs): "
                  f"the peak is the step below")
    if validity == "VALID" and not final["passes"]:  # LoadGen's rule too: the latency bound is part of validity
        validity = "INVALID"
        reason = f"p99 {final['p99_us']:.0f} µs over the bound at the full duration: the peak is below this rate"
    out.update(peak_per_s=passing, final=final, validity=validity, reason=reason)
    return out


def _family_entry(c: RunnerChoice) -> dict[str, Any]:
    return {"id": c.id, "name": c.family or c.name, "grad_mode": c.grad_mode, "threads": c.threads,
            **({"jdk": c.jdk} if c.jdk else {})}


def own_rows(suite: Suite, names: list[str]) -> dict[tuple[str, int], str]:
    """(family, batch) → the chosen row that the run itself measured at that batch with the offline row's
    settings (runner, grad mode, threads, JDK): the same job, so the offline scenario takes its figure rather
    than starting it again (at the default batches, each path's row at batch 1)."""
    by_name = {c.name: c for c in suite.runners}
    entries: dict[str, dict[str, Any]] = {}
    own: dict[tuple[str, int], str] = {}
    for c in (by_name[n] for n in names):
        family = c.family or c.name
        entry = entries.setdefault(family, _family_entry(c))
        if entry == _family_entry(c):
            own.setdefault((family, c.batch), c.name)
    return own


def offline_suite(suite: Suite, names: list[str]) -> Suite | None:
    """The offline scenario's sub-run: the chosen rows at each of [load]'s batch sizes but those the run measured
    itself (own_rows), the same model and run settings (each batch row times calls // batch calls, as a [sweep]
    row), without programs, load or claims; None when every batch is one the run measured."""
    spec = suite.load or LoadSpec()
    by_name = {c.name: c for c in suite.runners}
    entries: dict[str, dict[str, Any]] = {}  # one per family: its batch rows are named <family>-b<batch>
    for c in (by_name[n] for n in names):
        entries.setdefault(c.family or c.name, _family_entry(c))

    def bad(field: str, problem: str, fix: str) -> UserError:
        return UserError(f"the offline scenario of suite '{suite.name}': {field}: {problem}: {fix}")

    run = dataclasses.replace(suite.run, programs=False, decomposition=False, instructions=False)
    own = own_rows(suite, names)
    choices = tuple(c for c in runner_rows.expand(list(entries.values()), {"batch": list(spec.offline_batches)},
                                                  run, suite.model.kind, bad) if (c.family, c.batch) not in own)
    if not choices:
        return None
    inputs = dataclasses.replace(suite.inputs, count=max(suite.inputs.count, runner_rows.samples_needed(run, choices)))
    sub = dataclasses.replace(suite, name=f"{suite.name}-offline", runners=choices, run=run, inputs=inputs,
                              claims=(), load=None)
    runner_rows.check_blocks(sub)
    return sub


def offline_of(sub_df: pd.DataFrame, suite: Suite, name: str, df: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """One path's samples per second at each batch size, and the best verified one: from the offline sub-run's
    results (`sub_df`), or at a batch the run measured itself (own_rows of the chosen `names`) from its own (`df`)."""
    family = next(c.family or c.name for c in suite.runners if c.name == name)
    own = own_rows(suite, names)
    rows = []
    for b in (suite.load or LoadSpec()).offline_batches:
        own_row = own.get((family, b))
        sub_name = own_row or f"{family}-b{b}"
        source = df if own_row else sub_df
        found = source[source["runner"].eq(sub_name)]
        if found.empty:
            rows.append({"batch": b, "row": sub_name, "ok": False, "problem": "not in the offline run's results"})
            continue
        r = found.iloc[0]
        ok = r["status"] == "ok" and str(r["outputs_ok"]) == "True" and pd.notna(r["median_us"])
        rec: dict[str, Any] = {"batch": b, "row": sub_name, "ok": bool(ok), "own": own_row is not None}
        if ok:
            rec.update(median_us=float(r["median_us"]), samples_per_s=b * 1e6 / float(r["median_us"]))
        else:
            why = r.get("message") if isinstance(r.get("message"), str) else ""
            rec["problem"] = f"{r['status']}: {why}" if r["status"] != "ok" else "its outputs did not match"
        rows.append(rec)
    best = max((r for r in rows if r["ok"]), key=lambda r: r["samples_per_s"], default=None)
    return {"batches": rows, "best_batch": best["batch"] if best else None,
            "best_samples_per_s": best["samples_per_s"] if best else None}


def _offline(suite: Suite, run_dir: Path, df: pd.DataFrame, record: dict[str, Any],
             run_sub: Callable[[Suite, Path], None], say: Callable[[str], None]) -> None:
    """Run the offline sub-run in load/offline/ and give each measured path its figures (or say why none)."""
    names = [e["row"] for e in record["paths"] if "problem" not in e]
    if suite.model.is_user:
        record["offline"] = {"problem": "a user's model is called at its given input shapes only: give the batch "
                                        "in the input shape to measure another"}
        return
    if not names:
        return
    t0 = time.perf_counter()
    sub_suite = offline_suite(suite, names)
    sub_df = pd.DataFrame({"runner": []})
    record["offline"] = {}
    if sub_suite is not None:
        batches = ", ".join(str(b) for b in dict.fromkeys(c.batch for c in sub_suite.runners))
        processes = len(sub_suite.runners) * sub_suite.run.repeats
        say(f"load offline: {', '.join(names)} at batch {batches}, {processes} processes (about "
            f"{jobs_estimate(run_dir, suite, names, sub_suite):.0f} s, and any package not yet compiled) …")
        sub = run_dir / FOLDER / "offline"
        sub.mkdir()
        try:
            run_sub(sub_suite, sub)
            sub_df = pd.read_csv(sub / "results.csv")
        except (UserError, BuildError, OSError, ValueError, RuntimeError) as exc:  # the other phases' figures stand
            record["offline"] = {"problem": f"the offline run failed: {type(exc).__name__}: {exc}",
                                 "wall_s": round(time.perf_counter() - t0, 1)}
            return
        record["offline"]["folder"] = f"{FOLDER}/offline"
    for e in record["paths"]:
        if e["row"] in names:
            e["offline"] = offline_of(sub_df, suite, e["row"], df, names)
    record["offline"]["wall_s"] = round(time.perf_counter() - t0, 1)


def measure(suite: Suite, run_dir: Path, df: pd.DataFrame, rows: dict[str, Built], files: dict[str, Path],
            say: Callable[[str], None], run_sub: Callable[[Suite, Path], None] | None = None) -> dict[str, Any]:
    """Every load phase of every chosen row, then the offline sub-run (`run_sub` runs a suite into a folder);
    load.json written (also on the way out of an interruption)."""
    spec = suite.load or LoadSpec()
    root = run_dir / FOLDER
    root.mkdir(exist_ok=True)
    jobs = _Jobs(suite, run_dir, rows, files)
    by_name = {c.name: c for c in suite.runners}
    verified = set(fastest.verified(df)["runner"])
    record: dict[str, Any] = {"spec": spec.__dict__ | {"callers": list(callers_of(spec))}, "cores": cores(),
                              "complete": False, "paths": []}
    t0 = time.perf_counter()
    names = chosen(df, spec)
    runs, fixed = phases(spec)
    measured = [n for n in names if n in verified]
    say(f"load: {', '.join(measured) or 'no verified path'}: per path {runs} runs, {fixed:g} s of set durations "
        f"at most, about {sum(fixed + runs * jobs.startup_s(n) for n in measured):.0f} s in all with their "
        "start-ups" + (", then the offline run" if spec.offline_batches and run_sub is not None else "") + " …")
    try:
        for name in names:
            row = df[df["runner"].eq(name)].iloc[0]
            entry: dict[str, Any] = {"row": name, "runner_id": row["runner_id"], "language": row["language"],
                                     "single_us": float(row["median_us"]) if pd.notna(row["median_us"]) else None}
            record["paths"].append(entry)
            if name not in verified:
                entry["problem"] = f"not measured under load: the row is {row['status']}" + (
                    "" if row["status"] != "ok" else " but its outputs did not match")
                continue
            t_row = time.perf_counter()
            _measure_row(jobs, by_name[name], root / name, spec, entry, say)
            entry["wall_s"] = round(time.perf_counter() - t_row, 1)
        if spec.offline_batches and run_sub is not None:
            _offline(suite, run_dir, df, record, run_sub, say)
        record["complete"] = True
    finally:
        record["wall_s"] = round(time.perf_counter() - t0, 1)
        write_json(run_dir / "load.json", record)
    return record


def phases(spec: LoadSpec) -> tuple[int, float]:
    """A path's load runs at most (each a fresh start of its processes) and their set durations in seconds:
    threads 1..N and processes 2..N closed, the search's rates, the full-duration run, the no-op run."""
    closed = 2 * len(callers_of(spec)) - (1 in callers_of(spec))
    runs = closed + spec.search_steps + 2
    return runs, closed * spec.closed_s + (spec.search_steps + 1) * spec.search_s + spec.duration_s


def _measure_row(jobs: _Jobs, choice: RunnerChoice, out: Path, spec: LoadSpec, entry: dict[str, Any],
                 say: Callable[[str], None]) -> None:
    entry["threads"], entry["processes"] = [], []
    for n in callers_of(spec):
        say(f"load {choice.name}: {n} caller thread(s) calling flat out, {jobs.expect(choice.name, spec.closed_s)} …")
        entry["threads"].append(jobs.closed(choice, out / f"threads-{n}", n, 1, spec.closed_s))
        if n > 1:
            say(f"load {choice.name}: {n} single-caller processes calling flat out, "
                f"{jobs.expect(choice.name, spec.closed_s)} …")
            entry["processes"].append(jobs.closed(choice, out / f"processes-{n}", 1, n, spec.closed_s))
        else:  # one single-caller process is the one-thread measurement itself
            entry["processes"].append(entry["threads"][-1] | {"same_as": "threads-1"})
    base = next((m for m in entry["threads"] if m["callers"] == spec.server_callers and m["ok"]), None)
    if base is None:
        base = jobs.closed(choice, out / f"capacity-{spec.server_callers}", spec.server_callers, 1, spec.closed_s)
    if not base["ok"]:
        entry["server"] = {"peak_per_s": None, "validity": "INVALID", "reason": base["problem"], "tries": []}
        return
    tries: list[dict[str, Any]] = []

    def try_rate(rate: float, seconds: float) -> dict[str, Any]:
        k = len(tries)  # search() tries up to search_steps rates, stopping at a failed run, then the final one
        final = k >= spec.search_steps or (k > 0 and not tries[-1]["ok"]) or seconds != spec.search_s
        what = "the full-duration run at the peak" if final else f"search {k + 1} of at most {spec.search_steps}"
        say(f"load {choice.name}: server ({what}) at {rate:,.0f}/s, {jobs.expect(choice.name, seconds)} …")
        tries.append(jobs.poisson(choice, out / f"server-{k}", spec.server_callers, rate, seconds))
        return tries[-1]

    entry["server"] = search(try_rate, base["calls_per_s"], spec)
    peak = entry["server"]["peak_per_s"]
    if peak is not None:  # the scheduler's own share: the same arrivals, each call replaced by the no-op stand-in
        say(f"load {choice.name}: the scheduler alone (no-op calls) at {peak:,.0f}/s, "
            f"{jobs.expect(choice.name, spec.search_s)} …")
        entry["scheduler"] = jobs.poisson(choice, out / "scheduler", spec.server_callers, peak, spec.search_s,
                                          noop=True)


SELECT_CALLS = 20_000  # `invoke load`: the single-call run that finds each language's fastest path, unless --calls
# one process per row, unless --repeats (also the offline run's): enough to pick a language's fastest path where
# it is well ahead of the next (the default suite's Java and C++ paths are several times ahead); rows within the
# VM's process-to-process spread stay within it with two (a second round, mostly Python start-ups, took ~40 s)
SELECT_REPEATS = 1


def _numbers(text: str, option: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{option} {text}: not a comma-separated list of whole numbers: give e.g. 1,2,4") from None


def for_load(suite: Suite, calls: int | None, repeats: int | None, rows: str = "", callers: str = "",
             duration_s: float | None = None, bound_ms: float | None = None) -> Suite:
    """The suite as `invoke load` runs it: a short single-call run (no programs, decomposition or instruction
    counts) to find the fastest paths, then its [load] table (or the defaults) with the command line's values,
    checked against the same schema as the file."""
    table = dict(dataclasses.asdict(suite.load)) if suite.load else {}
    table = {k: list(v) if isinstance(v, tuple) else v for k, v in table.items()
             if not (k == "callers" and v == ())}  # callers () = the default: one caller per core
    given = {"runners": [r.strip() for r in rows.split(",") if r.strip()] if rows else None,
             "callers": _numbers(callers, "--callers") if callers else None,
             "duration_s": duration_s, "bound_ms": bound_ms}
    table.update({k: v for k, v in given.items() if v is not None})
    validate(table, SCHEMA["properties"]["load"], "the load settings (--rows, --callers, --duration, --bound-ms)")
    names = {c.name for c in suite.runners}
    if given["runners"]:
        unknown = [r for r in given["runners"] if r not in names]
        if unknown:
            raise UserError(f"--rows {unknown[0]}: not a row of suite '{suite.name}': use one of "
                            + ", ".join(sorted(names)))
    table["runners"] = [r for r in table.get("runners", []) if r in names]  # --only may have left some out
    spec = LoadSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})
    run = dataclasses.replace(suite.run, programs=False, decomposition=False, instructions=False)
    picked = dataclasses.replace(suite, run=run, load=spec)
    return with_overrides(picked, calls or SELECT_CALLS, repeats or SELECT_REPEATS)
