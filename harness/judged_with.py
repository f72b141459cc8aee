"""What a run is judged with, recorded in its folder: the registry entries it used and the tolerances.

`invoke report` on an old run reads these back instead of today's registry, so a changed entry, tolerance
or torch cannot re-verify an old run under other rules. The claims live in suite.json, the libtorch the
run used in environment.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from harness import verify
from harness.files import write_json
from harness.runners import RUNNERS

FILE = "judged_with.json"
SEED_BASE = "python-eager"  # the seed's ratios are to Python eager (BRIEF.md 000)


def entry(runner_id: str, default: tuple[float, float] = (verify.ATOL, verify.RTOL)) -> dict[str, Any]:
    """A registry entry as plain data, its tolerance resolved to (atol, rtol): its own, else the suite's."""
    reg = RUNNERS[runner_id]
    d = dataclasses.asdict(reg)
    d["tolerance"] = list(reg.tolerance or default)
    return {k: v for k, v in d.items() if k not in ("templates",)}


def write(run_dir: Path, runner_ids: list[str], default: tuple[float, float] = (verify.ATOL, verify.RTOL)) -> None:
    """`default`: the suite's tolerance ([verify], or the one for a user's model), where a runner has none."""
    write_json(run_dir / FILE, {
        "runners": {rid: entry(rid, default) for rid in sorted(set(runner_ids))},
        "default_tolerance": list(default),
        "seed_python_seconds": RUNNERS[SEED_BASE].seed_seconds,
    })


def read(run_dir: Path, runner_ids: list[str]) -> dict[str, Any]:
    """The record of the run; a run older than the record is judged with today's registry, and says so."""
    path = run_dir / FILE
    if path.exists():
        return json.loads(path.read_text())
    print(f"note: {run_dir.name} predates {FILE}: judged with today's registry and tolerances", file=sys.stderr)
    return {"runners": {rid: entry(rid) for rid in set(runner_ids) if rid in RUNNERS},
            "default_tolerance": [verify.ATOL, verify.RTOL],
            "seed_python_seconds": RUNNERS[SEED_BASE].seed_seconds}
