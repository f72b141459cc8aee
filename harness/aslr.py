"""`invoke aslr`: do a VM's two speed modes follow where a process lands in memory?

The same job runs in fresh processes, alternating address-space randomisation on and off (`setarch -R`);
each process's median per call, and the medians of its first and second half, say whether the mode is
fixed at start (layout) or changes while the process runs (the machine). The summary is written to a new
markdown file under the results folder.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from harness.build import build_runner
from harness.errors import UserError
from harness.files import write_atomic, write_json
from harness.inputs import make_inputs
from harness.models import train_and_export
from harness.rule import number
from harness.run import child_env, job_for, own_temp
from harness.runners import RUNNERS
from harness.stats import modes_text, speed_modes
from harness.suite import Suite


def measure(suite: Suite, runner: str, processes: int, build_root: Path, out_dir: Path,
            say: Callable[[str], None]) -> list[dict[str, float | str]]:
    """2 × `processes` fresh processes of `runner`, ASLR on and off in turn: their median µs per call."""
    if shutil.which("setarch") is None:
        raise UserError("setarch not found: install util-linux (apt-get install util-linux)")
    choice = next((c for c in suite.runners if c.name == runner), None)
    if choice is None:
        raise UserError(f"--runner {runner}: not a runner of suite '{suite.name}': use one of "
                        + ", ".join(c.name for c in suite.runners))
    model = train_and_export(suite.model, suite.inputs, build_root)
    inputs = make_inputs(suite.inputs, suite.model.sample_size, build_root)
    b = build_runner(RUNNERS[choice.id], suite.model, build_root)
    if b.status != "ok":
        raise UserError(f"{runner} cannot run here: {b.reason}")
    files = {"torchscript": model.torchscript, "state_dict": model.state_dict, "weights": model.weights,
             "inputs": inputs.data}
    rows: list[dict[str, float | str]] = []
    for k in range(2 * processes):
        aslr = "off" if k % 2 else "on"
        d = out_dir / str(k)
        d.mkdir(parents=True)
        job = job_for(suite, choice, files, d)
        write_json(d / "job.json", job)
        argv = [*b.argv, str(d / "job.json")]
        if aslr == "off":
            argv = ["setarch", platform.machine(), "-R", *argv]
        env = child_env(choice.threads, b.env_for(suite, choice) if b.env_for else {})
        with own_temp(env) as env:
            p = subprocess.run(argv, env=env, cwd=b.source_dir or d, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise UserError(f"{runner} failed in process {k}: {p.stderr.strip().splitlines()[-1:]}")
        t = np.fromfile(d / "timings.bin", dtype="<i8") / choice.block / 1000.0
        half = t.size // 2
        rows.append({"aslr": aslr, "median_us": float(np.median(t)), "first_half_us": float(np.median(t[:half])),
                     "second_half_us": float(np.median(t[half:]))})
        say(f"  process {k + 1}/{2 * processes}, ASLR {aslr}: {number(rows[-1]['median_us'])} µs per call")
    return rows


def summary(rows: list[dict[str, float | str]], runner: str) -> str:
    """Per setting: how many processes ran in each of the modes found over all of them, and how many
    changed mode between their first and second half."""
    medians = np.array([float(x["median_us"]) for x in rows])
    modes = speed_modes(medians)
    lines = [f"# Speed modes and address-space randomisation: {runner}", "",
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, host {platform.node()}; {len(rows)} fresh processes "
             "alternating ASLR on and off (`setarch -R`). Over all of them: "
             f"{modes_text(modes) or 'one mode'}.", ""]
    if not modes:
        return "\n".join([*lines, "No two speed modes in these processes: nothing to explain on this machine today.",
                           ""])
    cut = float(np.sqrt(modes[0][0] * modes[1][0]))
    lines += [f"| ASLR | processes | in the fast mode (< {number(cut)} µs) | in the slow mode | changed mode "
              "within the process |", "|---|---|---|---|---|"]
    both = {}
    for setting in ("on", "off"):
        r = [x for x in rows if x["aslr"] == setting]
        fast = sum(float(x["median_us"]) < cut for x in r)
        switched = sum((float(x["first_half_us"]) < cut) != (float(x["second_half_us"]) < cut) for x in r)
        both[setting] = (0 < fast < len(r), switched)
        lines.append(f"| {setting} | {len(r)} | {fast} | {len(r) - fast} | {switched} |")
    if both["off"][0] or both["off"][1]:
        verdict = ("With ASLR off the processes still fall in both modes, or change mode while they run: the "
                   "modes come from the machine (e.g. the host scheduling the VM's vCPUs), not from where a "
                   "process lands in memory. Turning ASLR off does not avoid them; compare within one run, and "
                   "trust paired ratios and instruction counts (`invoke all --instructions`).")
    else:
        verdict = ("With ASLR off every process runs in one mode: the modes follow memory layout. Running the "
                   "runners under `setarch -R` avoids them.")
    return "\n".join([*lines, "", verdict, ""])


def write(text: str, results_root: Path) -> Path:
    results_root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        out = results_root / (f"aslr-{stamp}" + (f"-{n}" if n > 1 else "") + ".md")
        if not out.exists():
            write_atomic(out, text)
            return out
    raise UserError(f"could not name a new file under {results_root}: clean it up")
