"""Command-line overrides (--calls, --repeats, --only, --instructions) for one run, checked like the suite file."""

from __future__ import annotations

import dataclasses

from harness.errors import UserError
from harness.runner_rows import check_blocks, samples_needed
from harness.suite import Collection, RunnerChoice, Suite


def _selectable(runners: tuple[RunnerChoice, ...]) -> set[str]:
    """What `--only` accepts: each row's name, and a sweep's family name for all of its rows."""
    return {c.name for c in runners} | {c.family for c in runners if c.family}


def with_overrides(
    suite: Suite, calls: int | None = None, repeats: int | None = None, only: str | None = None,
    instructions: bool = False,
) -> Suite:
    """Apply `--calls`, `--repeats`, `--only`, `--instructions` for one run, with the same checks as the file."""
    run, inputs, runners = suite.run, suite.inputs, suite.runners
    if instructions:
        run = dataclasses.replace(run, instructions=True)
    if calls is not None:
        if not 1 <= calls <= 100_000_000:
            raise UserError(f"--calls {calls}: out of range: give a number from 1 to 100000000")
        run = dataclasses.replace(run, calls=calls)
    if repeats is not None:
        if not 1 <= repeats <= 100:
            raise UserError(f"--repeats {repeats}: out of range: give a number from 1 to 100")
        run = dataclasses.replace(run, repeats=repeats)
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        listed = _selectable(runners)
        for w in wanted:
            if w not in listed:
                raise UserError(
                    f"--only {w}: not a runner of suite '{suite.name}': use one of " + ", ".join(sorted(listed))
                )
        runners = tuple(c for c in runners if c.name in wanted or c.family in wanted)
    if calls is not None and not inputs.fixed_count:
        inputs = dataclasses.replace(inputs, count=samples_needed(run, runners))
    out = dataclasses.replace(suite, run=run, inputs=inputs, runners=runners)
    check_blocks(out)
    return out


def collection_with_overrides(
    coll: Collection, calls: int | None = None, repeats: int | None = None, only: str | None = None,
    instructions: bool = False,
) -> Collection:
    """The overrides applied to every part; `--only` keeps the parts that have one of the runners named."""
    parts = []
    wanted = {w.strip() for w in (only or "").split(",") if w.strip()}
    for part in coll.parts:
        names = _selectable(part.runners)
        if wanted and not wanted & names:
            continue
        parts.append(with_overrides(part, calls, repeats, ",".join(sorted(wanted & names)) or None, instructions))
    if wanted:
        known = set().union(*(_selectable(p.runners) for p in coll.parts))
        unknown = sorted(wanted - known)
        if unknown:
            raise UserError(f"--only {unknown[0]}: not a runner of any part of '{coll.name}': use one of "
                            + ", ".join(sorted(known)))
    return dataclasses.replace(coll, parts=tuple(parts))
