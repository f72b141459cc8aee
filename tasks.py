"""Command line of the benchmark: each task is thin and calls one function of harness/."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Exit, task

from harness.errors import UserError


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserError into one line on stderr and exit status 2; Ctrl-C into status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise Exit(f"error: {exc}", code=2) from None
        except KeyboardInterrupt:
            raise Exit("interrupted: the run folder is marked incomplete; nothing else was changed", code=130) from None

    return wrapper


@task(
    help={
        "suite": "suite name (harness/suites/NAME.toml) or path to a TOML file; default: the seed experiment",
        "calls": "timed calls per runner process, overriding the suite (e.g. 1000000 for the seed's scale)",
        "repeats": "fresh processes per runner, overriding the suite",
        "only": "comma-separated runners to run (a sweep runner name selects all its rows), e.g. cpp-api,cpp-raw",
        "results": "folder that receives the run folder (default: results/)",
        "quiet": "no progress lines (without a terminal they are plain lines, without the live bar)",
        "instructions": "also count instructions per call under valgrind (3 fresh processes per runner; slow)",
        "model": "your model instead of a suite: a TorchScript file, a .pt2 (ExportedProgram or AOTInductor "
                 "package) or FILE.py:FUNCTION returning an nn.Module (runs your code)",
        "input-shape": "with --model: one input's exact shape, e.g. 1,3,224,224; repeat it for each input, in order",
        "input-dtype": "with --model: that input's dtype (float32 default, float64, int64, int32, bool); repeatable",
    },
    iterable=["input_shape", "input_dtype"],
)
@user_errors
def all(c, suite="", calls=0, repeats=0, only="", results="", quiet=False, instructions=False,  # noqa: A001 - the task users asked for
        model="", input_shape=None, input_dtype=None):
    """Train, render, build, run, verify and report a suite (default: the seed experiment), or your --model."""
    from harness import overrides, paths, suite_file
    from harness.suite import Collection

    root = Path(results) if results else paths.RESULTS_DIR
    toml_text = None
    if model:
        from harness import user_suite

        if suite:
            raise UserError("give --model or --suite, not both: the run's suite.toml repeats a --model run")
        made, toml_text = user_suite.make(model, list(input_shape or []), list(input_dtype or []), calls or None,
                                          paths.BUILD_DIR)
        target = overrides.with_overrides(made, None, repeats or None, only or None, instructions)
    else:
        if input_shape or input_dtype:
            raise UserError("--input-shape and --input-dtype go with --model: give the model too")
        loaded = suite_file.load_suite(suite or None)
        target = (overrides.collection_with_overrides(loaded, calls or None, repeats or None, only or None,
                                                      instructions) if isinstance(loaded, Collection)
                  else overrides.with_overrides(loaded, calls or None, repeats or None, only or None, instructions))
    from harness import pipeline  # pandas, scipy, matplotlib: only once the suite is known to be good

    if isinstance(target, Collection):
        run_dir = pipeline.run_collection(target, root, paths.BUILD_DIR, quiet)
    else:
        run_dir = pipeline.run_suite(target, root, paths.BUILD_DIR, quiet, suite_toml=toml_text)
    print(run_dir / "report.md")


@task(
    help={
        "suite": "suite name or path (default: the seed experiment); its [load] table, else the defaults",
        "model": "your model instead of a suite, as for `invoke all`",
        "input-shape": "with --model: one input's exact shape; repeat it for each input, in order",
        "input-dtype": "with --model: that input's dtype; repeatable",
        "calls": f"timed calls of the single-call run that finds the fastest paths (default {20_000})",
        "repeats": "fresh processes per runner in that run (default 2)",
        "only": "comma-separated runners to consider",
        "rows": "comma-separated rows to load beside each language's fastest",
        "callers": "comma-separated caller counts (threads, and processes), default 1 up to the cores",
        "duration": "seconds of the server's run at the peak rate (default 10)",
        "bound-ms": "the p99 latency a server rate must keep (default 1 ms)",
        "results": "folder that receives the run folder (default: results/)",
        "quiet": "no progress display",
    },
    iterable=["input_shape", "input_dtype"],
)
@user_errors
def load(c, suite="", model="", input_shape=None, input_dtype=None, calls=0, repeats=0, only="", rows="",
         callers="", duration="", bound_ms="", results="", quiet=False):
    """Many callers at once: threads, processes and Poisson arrivals on each language's fastest verified path."""
    from harness import load as load_run
    from harness import overrides, paths, suite_file
    from harness.suite import Collection

    root = Path(results) if results else paths.RESULTS_DIR
    toml_text = None
    if model:
        from harness import user_suite

        if suite:
            raise UserError("give --model or --suite, not both")
        made, toml_text = user_suite.make(model, list(input_shape or []), list(input_dtype or []), None,
                                          paths.BUILD_DIR)
    else:
        if input_shape or input_dtype:
            raise UserError("--input-shape and --input-dtype go with --model: give the model too")
        made = suite_file.load_suite(suite or None)
        if isinstance(made, Collection):
            raise UserError(f"'{made.name}' is a collection of suites: give `invoke load` one suite")
    made = overrides.with_overrides(made, only=only or None)
    target = load_run.for_load(made, calls or None, repeats or None, rows, callers,
                               _number(duration, "--duration"), _number(bound_ms, "--bound-ms"))
    from harness import pipeline

    run_dir = pipeline.run_suite(target, root, paths.BUILD_DIR, quiet, suite_toml=toml_text)
    print(run_dir / "report.md")


@task(help={"suite": "suite name or path", "only": "comma-separated runner ids"})
@user_errors
def build(c, suite="", only=""):
    """Render and build the suite's runners (cached: an unchanged rerun rebuilds nothing)."""
    from harness import overrides, paths, suite_file
    from harness.build import build_runner
    from harness.runners import RUNNERS
    from harness.suite import Collection

    loaded = suite_file.load_suite(suite or None)
    parts = loaded.parts if isinstance(loaded, Collection) else (loaded,)
    for part in parts:
        s = overrides.with_overrides(part, only=only or None) if not isinstance(loaded, Collection) else part
        for rid in dict.fromkeys(RUNNERS[choice.id].build_id for choice in s.runners):
            b = build_runner(RUNNERS[rid], s.model, paths.BUILD_DIR)
            print(f"{s.name:16} {rid:28} {b.status:8} {b.reason}")


@task(help={"run": "run folder name under results/ or a path; default: the newest run"})
@user_errors
def report(c, run=""):
    """Recompute statistics and rewrite report.md of a run from its raw files."""
    from harness import collect, paths, pipeline
    from harness import report as rep

    run_dir = pipeline.resolve_run(run or None, paths.RESULTS_DIR)
    if (run_dir / "collection.json").exists():
        for part in pipeline.collection_parts(run_dir):
            collect.collect(part)
            rep.write_report(part)
        print(rep.write_collection_report(run_dir))
        return
    collect.collect(run_dir)
    print(rep.write_report(run_dir))


@task
@user_errors
def suites(c):
    """List the bundled suites with their descriptions."""
    from harness import paths, suite_file

    for p in sorted(paths.SUITES_DIR.glob("*.toml")):
        print(f"{p.stem:16} {suite_file.load_suite(str(p)).description}")


@task(help={"runner": "a runner of the default suite (default cpp-api)",
            "processes": "processes per setting, ASLR on and off (default 15)",
            "calls": "timed calls per process (default 100000)"})
@user_errors
def aslr(c, runner="cpp-api", processes=15, calls=100000):
    """Whether the machine's speed modes follow memory layout: the same job with ASLR on and off."""
    import tempfile

    from harness import aslr as experiment
    from harness import overrides, paths, suite_file

    if not 2 <= int(processes) <= 100:
        raise UserError(f"--processes {processes}: out of range: give a number from 2 to 100")
    suite = overrides.with_overrides(suite_file.load_suite("default"), calls=int(calls), repeats=1)
    with tempfile.TemporaryDirectory(prefix="aslr-") as tmp:
        rows = experiment.measure(suite, runner, int(processes), paths.BUILD_DIR, Path(tmp), print)
    print(experiment.write(experiment.summary(rows, runner), paths.RESULTS_DIR))


@task
def clean(c):
    """Delete the build cache (build/); results are never deleted."""
    import shutil

    from harness import paths

    shutil.rmtree(paths.BUILD_DIR, ignore_errors=True)
    print(f"removed {paths.BUILD_DIR}")


@task(help={
    "run_a": "the earlier run (folder name under results/ or a path)",
    "run_b": "the later run",
    "fail_above": "exit 1 if any runner is significantly slower in B by more than this many per cent (a CI gate)",
})
@user_errors
def compare(c, run_a, run_b, fail_above=""):
    """Compare two runs: per runner, the change in median, its 95 % CI and a significance verdict."""
    from harness import paths, pipeline
    from harness.compare import compare_runs, gate, write_comparison

    pct = _percent(fail_above) if fail_above != "" else None
    a = pipeline.resolve_run(run_a, paths.RESULTS_DIR)
    b = pipeline.resolve_run(run_b, paths.RESULTS_DIR)
    for run in (a, b):
        if (run / "collection.json").exists():
            part = next(iter(pipeline.collection_parts(run)), run / "PART").name
            raise UserError(f"{run.name} holds several suites (a collection): compare one of its parts, "
                            f"e.g. {run.name}/{part}")
        if not (run / "summary.json").exists():
            raise UserError(f"{run.name} has no summary.json (the run did not get that far): pick a completed run")
    out = b / f"compare-{a.name}.md"
    write_comparison(a, b, out)
    changes = compare_runs(a, b).attrs["changes"]
    for change in changes:
        print(change.line(pct))
    print(out)
    failed = gate(changes, pct) if pct is not None else []
    if failed:
        raise Exit(f"compare: {', '.join(failed)} significantly slower by more than {pct:g} %", code=1)


@task(help={"run_a": "the baseline run (folder name under results/ or a path); the report is written into it",
            "run_b": "a run of the same suite on another machine",
            "more": "comma-separated further runs of that suite, e.g. RUN_C,RUN_D"})
@user_errors
def merge(c, run_a, run_b, more=""):
    """One report of one suite across machines: each host's medians, ratios to RUN_A, environments, checks."""
    from harness import paths, pipeline
    from harness.merge import default_output, write_merge

    runs = [pipeline.resolve_run(n, paths.RESULTS_DIR) for n in [run_a, run_b, *filter(None, more.split(","))]]
    out = default_output(runs)
    write_merge(runs, out)
    print(out)


def _number(text: str, option: str) -> float | None:
    """A number option given as text (invoke has no float options); "" when not given."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{option} {text}: not a number: give e.g. 10 or 0.5") from None


def _percent(text: str) -> float:
    """A command-line percentage, checked like a suite value."""
    try:
        pct = float(text)
    except ValueError:
        raise UserError(f"--fail-above {text!r} is not a number: give a percentage, e.g. --fail-above 5") from None
    if not 0 <= pct <= 1000 or pct != pct:
        raise UserError(f"--fail-above {text}: give a percentage between 0 and 1000") from None
    return pct


@task(help={"run": "run folder name under results/ or a path; default: the run README.md cites, else the newest "
                    "complete single-suite run"})
@user_errors
def readme(c, run=""):
    """Rewrite README.md's results section (between its markers) from a run's files."""
    from harness import paths
    from harness import readme as rd

    path = paths.ROOT / "README.md"
    cited = rd.cited_run(path.read_text())
    run_dir = rd.pick_run(run or None, cited, paths.RESULTS_DIR)
    if rd.rewrite(path, run_dir):
        was = f" (it cited results/{cited})" if cited and cited != run_dir.name else ""
        print(f"README.md: results section rewritten from results/{run_dir.name}{was}")
    else:
        print(f"README.md: results section already matches results/{run_dir.name}; nothing written")


@task
@user_errors
def doctor(c):
    """Check each toolchain, print its version, and say which runners would be skipped and why."""
    from harness.doctor import render

    print(render())
