"""`invoke all`: suite → model → inputs → builds → runs → collect → report, in one new run folder."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness import collect, decomposition, environment, instructions, judged_with, load, programs, report, user_model
from harness.build import Built, build_runner, for_choice
from harness.cmake import BuildError
from harness.errors import UserError
from harness.exports import ensure_exports
from harness.exports import facts as export_facts
from harness.files import write_atomic, write_json
from harness.inputs import check_inputs, check_tensor_inputs, make_inputs, make_tensor_inputs
from harness.model_spec import ModelSpec
from harness.models import ModelFiles, reference_outputs, train_and_export
from harness.render import model_context
from harness.run import Outcome, run_all
from harness.runner_rows import calls_for
from harness.runners import RUNNERS
from harness.suite import Collection, Suite

CALIBRATION_SAMPLES = 32  # inputs a static-int8 export calibrates on


def new_run_dir(results_root: Path) -> Path:
    """results/<UTC timestamp>-<host>[-n]: created exclusively, so no run ever overwrites another."""
    try:
        results_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create results folder {results_root} ({exc.strerror}): pick a writable place"
        ) from None
    if not os.access(results_root, os.W_OK):
        raise UserError(f"results folder {results_root} is not writable: fix its permissions or pass another one")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    host = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in socket.gethostname())[:40]
    for n in range(1, 1000):
        d = results_root / (f"{stamp}-{host}" + (f"-{n}" if n > 1 else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    raise UserError(f"could not create a new run folder under {results_root}: clean it up")


def set_status(run_dir: Path, status: str, message: str = "") -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    write_json(run_dir / "status.json", {"status": status, "message": message, "finished": now})


class Reporter:
    """Progress on stderr (rich): a live bar on a terminal; without one (a pipe, a log file, CI) rich prints the
    same lines plain and the bar once at its end, so a long run piped to a file still shows where it is."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)  # a path or a table row never folded

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)


RUN_LOCK = ".run.lock"  # in the build folder; the tests give each of their workers its own (tests/conftest.py)


def _acquire_lock(build_root: Path) -> FileLock:
    """One run at a time per machine: two runs would share two cores and distort each other's timings.

    A second run waits for the first, saying so (even when quiet), rather than being refused: nothing
    the user asked for is lost. The lock is the operating system's, so a run that dies releases it.
    """
    lock = FileLock(str(build_root / RUN_LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"another run is in progress on this machine (lock {lock.lock_file}): waiting for it to finish, "
              "as two runs at once would distort each other's timings (Ctrl-C to give up)",
              file=sys.stderr, flush=True)
        try:
            lock.acquire()
        except KeyboardInterrupt:
            raise UserError("interrupted while waiting for the other run: nothing was started or changed") from None
    return lock


def run_suite(suite: Suite, results_root: Path, build_root: Path, quiet: bool = False,
              suite_toml: str | None = None) -> Path:
    """Do the whole job; on Ctrl-C or an error the run folder is kept and marked, nothing else touched.

    `suite_toml`: the suite made from the command line (`--model`), kept as suite.toml to repeat the run.
    """
    build_root.mkdir(parents=True, exist_ok=True)
    lock = _acquire_lock(build_root)
    try:
        out = Reporter(quiet)
        if suite.model.is_user:  # a model that does not take the given inputs is refused before any folder
            user_model.prepare(suite.model, build_root)
        run_dir = new_run_dir(results_root)
        set_status(run_dir, "running", "started")
        write_json(run_dir / "suite.json", _suite_record(suite))
        if suite_toml is not None:
            write_atomic(run_dir / "suite.toml", suite_toml)
        judged_with.write(run_dir, [c.id for c in suite.runners], suite.tolerance)
        out.say(f"run folder: {run_dir}")
        _run_guarded(suite, run_dir, build_root, out)
        return run_dir
    finally:
        lock.release()


_WRITE_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM)


def _run_guarded(suite: Suite, run_dir: Path, build_root: Path, out: Reporter) -> None:
    """_run, with the run folder marked incomplete or failed on any way out but success."""
    try:
        _run(suite, run_dir, build_root, out)
    except KeyboardInterrupt:
        set_status(run_dir, "incomplete", "interrupted (Ctrl-C) before the end")
        _try_report(run_dir)
        raise
    except UserError as exc:
        set_status(run_dir, "failed", str(exc))
        raise
    except OSError as exc:
        if exc.errno not in _WRITE_ERRORS:
            raise
        message = f"cannot write {exc.filename or 'a file'} ({exc.strerror}): free disk space or pass --results DIR"
        with contextlib.suppress(OSError):  # the disk may refuse this too; the error line still says it
            set_status(run_dir, "failed", message)
        raise UserError(message) from None
    except Exception as exc:
        set_status(run_dir, "failed", f"{type(exc).__name__}: {exc}")
        raise


def _try_report(run_dir: Path) -> None:
    """Best effort for a partial run: whatever finished is still collected and reported."""
    try:
        if (run_dir / "builds.json").exists():
            collect.collect(run_dir)
            report.write_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - a partial report must not hide the interruption
        print(f"note: partial report not written ({exc})", file=sys.stderr)


def _suite_record(suite: Suite) -> dict:
    d = dataclasses.asdict(suite)
    d["model"] = model_context(suite.model) | {
        "sample_shape": list(suite.model.sample_shape), "output_shape": list(suite.model.output_shape),
    }
    for entry, choice in zip(d["runners"], suite.runners, strict=True):
        entry["calls"] = calls_for(suite.run, choice)
        entry["slots"] = min(entry["calls"], suite.inputs.count // choice.batch)
    return d


def samples_compared(suite: Suite) -> int:
    """How many samples' outputs some runner keeps (the reference covers these, in input order)."""
    return max(min(calls_for(suite.run, c), suite.inputs.count // c.batch) * c.batch for c in suite.runners)


BUILD_WORKERS = 2  # builds at once (one per core); each C++ runner is one long translation unit


def _build_group(runners: list[str], model: ModelSpec, build_root: Path) -> dict[str, Built]:
    """Build these one after another (the Java runners share the bridge and Maven's local repository)."""
    return {rid: build_runner(RUNNERS[rid], model, build_root) for rid in runners}


def _prepare(suite: Suite, model_files: ModelFiles, calibration: np.ndarray, build_root: Path,
             out: Reporter) -> tuple[dict[str, Built], list[str]]:
    """Every runner built and every export it loads made; per runner id its Built, and the exports used.

    The builds (compilers in subprocesses) run in the background, BUILD_WORKERS at a time, while this
    thread makes the exports (torch.export and AOTInductor compiles take tens of seconds each), so a cold
    start pays for the longest of the two rather than their sum. A runner whose export cannot be made is
    skipped with the exporter's reason, even if its build succeeded.
    """
    ids = list(dict.fromkeys(c.id for c in suite.runners))  # each runner once, however many variants
    problems: dict[str, str | None] = {rid: RUNNERS[rid].cannot_run(suite.model) for rid in ids}
    build_ids = list(dict.fromkeys(RUNNERS[rid].build_id for rid in ids if not problems[rid]))
    groups: dict[str, list[str]] = {}
    for bid in build_ids:  # Java runners in one group; every other build alone
        groups.setdefault("java" if RUNNERS[bid].toolchain == "java" else bid, []).append(bid)
    out.say(f"building {len(build_ids)} runner(s), {BUILD_WORKERS} at a time: "
            + ", ".join(build_ids) + " …")
    used: list[str] = []
    with ThreadPoolExecutor(max_workers=BUILD_WORKERS) as pool:
        futures = [pool.submit(_build_group, group, suite.model, build_root) for group in groups.values()]
        try:
            for rid in ids:
                reg = RUNNERS[rid]
                if problems[rid]:
                    continue  # it cannot run this model: not built, no export made
                needs = tuple(dict.fromkeys(n for c in suite.runners if c.id == rid
                                            for n in reg.needs(c.batch, suite.model.is_user)))
                missing = [n for n in needs if not (model_files.dir / n).exists()]
                if missing:
                    slow = " (torch.export + AOTInductor: tens of seconds each, cached after)" if any(
                        n.endswith(".pt2") for n in missing) else ""
                    out.say(f"export {', '.join(missing)} for {rid}{slow} …")
                problems[rid] = ensure_exports(needs, suite.model, model_files, calibration)
                used += needs
        except BaseException:
            for f in futures:  # the builds not started yet; the running ones finish (their lock is held)
                f.cancel()
            raise
        builds = {bid: b for f in futures for bid, b in f.result().items()}
    built: dict[str, Built] = {}
    for rid in ids:
        problem = problems[rid]
        b = Built(rid, "skipped", problem) if problem else builds[RUNNERS[rid].build_id]
        if b.status != "ok":
            out.say(f"  {rid} [yellow]{b.status}[/]: {b.reason}")
        built[rid] = b
    return built, list(dict.fromkeys(used))


def _run(suite: Suite, run_dir: Path, build_root: Path, out: Reporter) -> None:
    t0 = time.perf_counter()
    out.say(f"model {suite.model.name} ({suite.model.kind}): training / loading from cache")
    model_files = train_and_export(suite.model, suite.inputs, build_root)
    raw = run_dir / "raw"
    raw.mkdir()
    if suite.model.is_user:  # its outputs are known now: the jobs and the report need their sizes
        meta = json.loads(model_files.meta.read_text())
        suite = dataclasses.replace(suite, model=dataclasses.replace(suite.model, outputs=tuple(meta["outputs"])))
        write_json(run_dir / "suite.json", _suite_record(suite))  # with the output sizes the checks read
        inputs = make_tensor_inputs(suite.model.tensors, suite.inputs.count, build_root)
        xs = check_tensor_inputs(inputs.manifest)
        calibration = np.zeros((0, 1), dtype="<f4")  # static int8 is for the built-in ConvBnReLU only
        out.say("reference outputs …")
        reference = user_model.reference_outputs(suite.model, model_files.dir, xs, samples_compared(suite))
    else:
        inputs = make_inputs(suite.inputs, suite.model.sample_size, build_root)
        x = check_inputs(inputs.manifest)
        calibration = x[:CALIBRATION_SAMPLES]
        out.say("reference outputs …")
        reference = reference_outputs(suite.model, model_files, x[: samples_compared(suite)])
    reference.tofile(raw / "reference.bin")
    shutil.copy(inputs.manifest, run_dir / "inputs.manifest.json")
    shutil.copy(model_files.meta, run_dir / "model.json")
    write_json(run_dir / "environment.json", environment.collect())

    logs = run_dir / "logs"
    logs.mkdir()
    built, used = _prepare(suite, model_files, calibration, build_root, out)
    for rid, b in built.items():
        if b.log and b.log.exists():
            shutil.copy(b.log, logs / f"{RUNNERS[rid].build_id}.build.log")
    write_json(run_dir / "exports.json", export_facts(model_files, used))
    rows = {c.name: for_choice(built[c.id], c) for c in suite.runners}  # a row naming a JDK: built with it
    write_json(run_dir / "builds.json", {name: {"status": b.status, "reason": b.reason} for name, b in rows.items()})
    out.say(f"ready in {time.perf_counter() - t0:.0f} s")

    files = {"torchscript": model_files.torchscript, "state_dict": model_files.state_dict,
             "weights": model_files.weights, "inputs": inputs.data}
    jobs = suite.run.repeats * sum(1 for b in rows.values() if b.status == "ok")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=out.console, disable=out.quiet) as progress:
        task = progress.add_task("running", total=jobs)

        def done(o: Outcome) -> None:
            progress.advance(task)
            progress.update(task, description=f"{o.runner} #{o.repeat + 1}")
            if o.status != "ok":
                progress.console.print(f"  [red]{o.runner} repeat {o.repeat + 1}: {o.status.upper()}[/] {o.message}")

        outcomes = run_all(suite, rows, files, raw, done)

    if suite.run.instructions:
        failed = {o.runner for o in outcomes if o.status != "ok"}
        ok = {o.runner for o in outcomes} - failed
        instructions.measure_suite(suite, rows, files, raw, ok, out.say)

    df = collect.collect(run_dir)
    made = programs.make_all(run_dir, df, build_root, suite.run.repeats, out.say) if suite.run.programs else []
    if made:
        out.say(f"programs: {run_dir / 'programs'} ({len(made)}, one folder per row, run.sh in each)")
    if suite.run.decomposition:
        _decompose(suite, run_dir, df, build_root, out)
    if suite.load is not None:
        record = load.measure(suite, run_dir, df, rows, files, out.say, _sub_run(build_root, out))
        out.say(f"load: {run_dir / 'load.json'} ({len(record['paths'])} paths, {record['wall_s']:.0f} s)")
    set_status(run_dir, "complete", f"{len(df)} runners, {time.perf_counter() - t0:.0f} s")
    path = report.write_report(run_dir)
    out.say(f"report: {path}")
    if not out.quiet:
        out.console.print(report.headline_table(df))


def _sub_run(build_root: Path, out: Reporter) -> Callable[[Suite, Path], None]:
    """Runs a derived suite (the decomposition's one-op model, the load's offline batches) into a sub-folder of
    the run, as a run of its own: its status, suite record, tolerances, builds, rows and results."""
    def run(sub_suite: Suite, sub_dir: Path) -> None:
        if sub_suite.model.is_user:
            user_model.prepare(sub_suite.model, build_root)
        set_status(sub_dir, "running", "started")
        write_json(sub_dir / "suite.json", _suite_record(sub_suite))
        judged_with.write(sub_dir, [c.id for c in sub_suite.runners], sub_suite.tolerance)
        _run_guarded(sub_suite, sub_dir, build_root, out)

    return run


def _decompose(suite: Suite, run_dir: Path, df: pd.DataFrame, build_root: Path, out: Reporter) -> None:
    """The fastest paths split into crossing, framework, operators and arithmetic (harness/decomposition.py).

    It measures more (a one-op run in <run>/decomposition/, the empty calls): if that fails, the run's own
    results stand and decomposition.json says what failed.
    """
    try:
        record = decomposition.make(run_dir, df, suite, build_root, _sub_run(build_root, out), out.say)
    except (UserError, BuildError, OSError, ValueError, RuntimeError) as exc:
        write_json(run_dir / "decomposition.json", {"error": f"{type(exc).__name__}: {exc}"})
        out.say(f"decomposition not made: {exc}")
        return
    if record:
        out.say(f"decomposition: {run_dir / 'decomposition.png'}")


def run_collection(coll: Collection, results_root: Path, build_root: Path, quiet: bool = False) -> Path:
    """Every part of a collection, one after another, each in its own sub-folder of one new run folder.

    A part that fails (bad input, a crash of the harness) is marked failed and the others still run;
    the collection's report says which.
    """
    build_root.mkdir(parents=True, exist_ok=True)
    lock = _acquire_lock(build_root)
    try:
        out = Reporter(quiet)
        run_dir = new_run_dir(results_root)
        set_status(run_dir, "running", "started")
        write_json(run_dir / "collection.json", {
            "name": coll.name, "description": coll.description, "source": coll.source,
            "parts": [p.name for p in coll.parts],
        })
        out.say(f"run folder: {run_dir}")
        failed = []
        try:
            for k, part in enumerate(coll.parts, 1):
                out.say(f"[bold]part {k}/{len(coll.parts)}: {part.name}[/] ({part.description})")
                part_dir = run_dir / part.name
                part_dir.mkdir()
                set_status(part_dir, "running", "started")
                write_json(part_dir / "suite.json", _suite_record(part))
                judged_with.write(part_dir, [c.id for c in part.runners], part.tolerance)
                try:
                    _run_guarded(part, part_dir, build_root, out)
                except UserError as exc:
                    failed.append(part.name)
                    out.say(f"  [red]part {part.name} failed[/]: {exc}")
        except KeyboardInterrupt:
            set_status(run_dir, "incomplete", "interrupted (Ctrl-C) before the end")
            report.write_collection_report(run_dir)
            raise
        if failed:
            set_status(run_dir, "incomplete", "parts failed: " + ", ".join(failed))
        else:
            set_status(run_dir, "complete", f"{len(coll.parts)} parts")
        path = report.write_collection_report(run_dir)
        out.say(f"report: {path}")
        return run_dir
    finally:
        lock.release()


def latest_run(results_root: Path) -> Path:
    runs = sorted(p for p in results_root.iterdir() if (p / "status.json").exists()) if results_root.exists() else []
    if not runs:
        raise UserError(f"no runs under {results_root}: run `invoke all` first")
    return runs[-1]


def resolve_run(name: str | None, results_root: Path) -> Path:
    if not name:
        return latest_run(results_root)
    p = Path(name)
    if not p.is_dir():
        p = results_root / name
    if not (p / "status.json").exists():
        raise UserError(f"'{name}' is not a run folder (no status.json): give a folder under {results_root}")
    return p




def collection_parts(run_dir: Path) -> list[Path]:
    """The part folders of a collection run that got as far as a builds.json (so they can be collected)."""
    names = json.loads((run_dir / "collection.json").read_text())["parts"]
    return [run_dir / n for n in names if (run_dir / n / "builds.json").exists()]
