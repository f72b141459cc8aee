"""Write the README's results section from a run's files, so its figures are never pasted by hand."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from harness import judged_with
from harness.errors import UserError
from harness.files import write_atomic
from harness.pipeline import resolve_run
from harness.report import headline_table

START = "<!-- results-table -->\n"
END = "<!-- /results-table -->"
REQUIRED = ("summary.json", "results.csv", "environment.json", "suite.json", "status.json")
WIDTH = 105  # the README's prose is wrapped near this width
_LINK = re.compile(r"\]\(results/([^/()\s]+)/report\.md\)")


def _bounds(text: str) -> tuple[int, int] | None:
    """Where the section's body starts and ends, or None unless each marker is there once, in order."""
    if text.count(START) != 1 or text.count(END) != 1:
        return None
    begin, end = text.index(START) + len(START), text.index(END)
    return (begin, end) if begin <= end else None


def section(readme_text: str) -> str | None:
    """The text between the markers as it stands."""
    b = _bounds(readme_text)
    return readme_text[b[0]:b[1]] if b else None


def cited_run(readme_text: str) -> str | None:
    """The run folder name the section links to, so a plain `invoke readme` refreshes the same run."""
    body = section(readme_text)
    m = _LINK.search(body) if body else None
    return m.group(1) if m else None


def check_run(run_dir: Path) -> None:
    """Refuse what the section cannot describe: a collection, an unfinished run, a run without figures."""
    name = run_dir.name
    if (run_dir / "collection.json").exists():
        raise UserError(f"{name} is a collection (several suites): give one suite's run with --run RUN")
    if not (run_dir / "status.json").exists():
        raise UserError(f"{name} is not a run folder (no status.json): give a folder under results/ with --run RUN")
    status = json.loads((run_dir / "status.json").read_text()).get("status")
    if status != "complete":
        raise UserError(f"{name} is {status}, not complete: finish it with `invoke all` or give a complete run")
    for f in REQUIRED:
        if not (run_dir / f).exists():
            raise UserError(f"{name} has no {f}: rebuild it with `invoke report --run {name}` or give another run")


def newest_run(results_root: Path) -> Path:
    """The newest run the section can describe, for a README that cites none."""
    runs = sorted(results_root.iterdir()) if results_root.is_dir() else []
    for run_dir in reversed(runs):
        try:
            check_run(run_dir)
        except UserError:
            continue
        return run_dir
    raise UserError(f"no complete single-suite run under {results_root}: run `invoke all` first")


def pick_run(name: str | None, cited: str | None, results_root: Path) -> Path:
    """The run asked for (a name under results/ or a path), else the one cited, else the newest usable one."""
    if name:
        return resolve_run(name, results_root)
    if cited:
        if not (results_root / cited).is_dir():
            raise UserError(f"README.md cites results/{cited}, which does not exist: give a run with --run RUN")
        return results_root / cited
    return newest_run(results_root)


def _load(run_dir: Path, name: str) -> Any:
    return json.loads((run_dir / name).read_text())


def _wrap(text: str) -> str:
    """Wrap like the README's prose, never between a figure and its unit (`12 %`, `× py-eager`)."""
    glued = re.sub(r" (?=%)|(?<=×) ", "\0", text)
    return textwrap.fill(glued, WIDTH, break_long_words=False, break_on_hyphens=False).replace("\0", " ")


def _spread(df: pd.DataFrame, medians: dict[str, list[float]]) -> str:
    """How far repeats of the libtorch runners disagree, measured, or "" if this run cannot say."""
    torch_rows = df[df["status"].eq("ok") & df["libtorch_path"].notna() & df["cv_repeat_medians"].notna()]
    if torch_rows.empty:
        return ""
    lo, hi = (round(100 * torch_rows["cv_repeat_medians"].agg(f)) for f in ("min", "max"))
    cv = f"{lo}" if lo == hi else f"{lo}–{hi}"
    text = f" The repeat-to-repeat spread (CV of the repeat medians) is {cv} % for the libtorch runners"
    ratios = {r: max(m) / min(m) for r in torch_rows["runner"] if len(m := medians.get(r) or []) > 1 and min(m) > 0}
    if ratios:
        worst = max(ratios, key=lambda r: ratios[r])
        text += f"; {worst}'s slowest process measured {ratios[worst]:.1f}× the median of its fastest"
    return text + ". The report flags noisy runners in its quality table."


def render_section(run_dir: Path) -> str:
    """The body between the markers: one sentence on the setting, the headline table, how to read it."""
    check_run(run_dir)
    df = pd.read_csv(run_dir / "results.csv")
    summary, env, suite = (_load(run_dir, f) for f in ("summary.json", "environment.json", "suite.json"))
    run = suite["run"]
    threads = f"{run['threads']} thread{'' if run['threads'] == 1 else 's'}"
    cores = f", {env['cores_logical']} cores" if env.get("cores_logical") else ""
    link = f"results/{run_dir.name}/report.md"
    setting = (f"Suite `{suite['name']}` on {env.get('cpu_model') or 'an unnamed CPU'}{cores} (host `{env['host']}`), "
               f"torch {env['torch']}, {threads}, {run['calls']:,} calls × {run['repeats']} fresh processes per "
               f"runner; full report with plots and environment: [{link}]({link}).")
    note = ("µs per call: the median of the repeats' medians, with a 95 % bootstrap interval over repeats; "
            "× py-eager and × cpp-raw divide by those runners' medians.")
    seed_rows = df[df["seed_ratio_to_python"].notna()]
    entries = judged_with.read(run_dir, list(seed_rows["runner_id"]))["runners"]
    seconds = [entries[r]["seed_seconds"] for r in seed_rows["runner_id"] if (entries.get(r) or {}).get("seed_seconds")]
    if seconds and len(seconds) == len(seed_rows):
        note += (" *seed ×* is the same ratio in the seed article ("
                 + " / ".join(f"{s:g}" for s in seconds) + " s for 1M calls).")
    note += _spread(df, summary.get("repeat_medians_us") or {})
    return f"{_wrap(setting)}\n\n{headline_table(df)}\n\n{_wrap(note)}\n"


def rewrite(readme_path: Path, run_dir: Path) -> bool:
    """Replace the marked section with the run's; True if the file changed. Text outside stays as it is."""
    text = readme_path.read_text()
    b = _bounds(text)
    if b is None:
        raise UserError(f"{readme_path.name} lacks one `{START.strip()}` … `{END}` pair: put the markers back "
                        "around the results section")
    body = render_section(run_dir)
    if run_dir.resolve().parent != (readme_path.parent / "results").resolve():
        raise UserError(f"{run_dir} is not directly under {readme_path.parent / 'results'}: the README links "
                        "results/RUN/report.md, so copy the run there first")
    new = text[:b[0]] + body + text[b[1]:]
    if new == text:
        return False
    write_atomic(readme_path, new)
    return True
