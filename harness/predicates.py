"""The comparisons a claim can make, each one small function of (the run's rows, the claim's fields).

A suite's `[[claims]]` name one of these as `check`; harness/recipes.py evaluates them. Every speed
comparison goes through harness/rule.py, so all verdicts follow its one rule. Runners are named as the
suite names its rows: a string is one row, a list several (compared pair by pair), `{best_of = …}` the
fastest of a set, and a set is a list of names or a filter `{language = "Python", uses_torch = true}`.
(Over 300 lines: one short function per check, kept together so the list of checks reads as one page.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness import sweep
from harness.claims import CHECK_NAMES
from harness.rule import HOLDS, MARGIN, MIXED, NOT, SAME_MARGIN, Figure, combine, compare, number, phrase, verdict


class NotTestable(Exception):
    """A row the claim needs did not run or did not finish: the verdict is "not testable here"."""


@dataclass(frozen=True)
class Finding:
    verdict: str
    ours: str  # our figures
    why: str


@dataclass
class Rows:
    """One run's table, as the predicates see it: every row by name, the ok ones as per-call figures."""

    df: pd.DataFrame
    repeat_medians: Mapping[str, Sequence[float]] = field(default_factory=dict)
    uses_torch: Mapping[str, bool] = field(default_factory=dict)  # runner id → it loads libtorch

    def __post_init__(self) -> None:
        self.rows = {str(r["runner"]): r for r in self.df.to_dict("records")}

    def row(self, name: str) -> dict[str, Any]:
        if name not in self.rows:
            raise NotTestable(f"{name} was not run")
        return self.rows[name]

    def figure(self, name: str, metric: str = "median_us") -> Figure:
        """The row's figure for `metric` (µs per call by default, with its interval and repeats)."""
        r = self.row(name)
        if r.get("status") != "ok":
            raise NotTestable(f"{name} {r.get('status')}: {r.get('message') or 'no reason recorded'}")
        value = _float(r, metric)
        if math.isnan(value):
            raise NotTestable(f"{name} has no {metric}")
        if metric == "median_us":
            return Figure(name, value, _float(r, "median_ci_low_us"), _float(r, "median_ci_high_us"),
                          tuple(self.repeat_medians.get(name, ())))
        label, unit, scale = METRICS[metric]
        return Figure(f"{name} {label}", value * scale, unit=unit)

    def modes(self, name: str) -> str:
        """The row's two speed modes in words ("9.6 µs (3 processes) and 17.6 µs (2)"), or ""."""
        text = self.rows.get(name, {}).get("speed_modes")
        return text.removeprefix("two speed modes: ") if isinstance(text, str) else ""

    def members(self, spec: Any) -> list[Figure]:
        """A set: listed names (each must be ok), or every ok row matching a filter."""
        if isinstance(spec, list):
            return [self.figure(n) for n in spec]
        out = [self.figure(n) for n, r in self.rows.items() if r.get("status") == "ok" and self._matches(r, spec)]
        if not out:
            raise NotTestable(f"no ok row matches {spec}")
        return out

    def _matches(self, r: dict[str, Any], spec: Mapping[str, Any]) -> bool:
        if "language" in spec and r.get("language") != spec["language"]:
            return False
        return "uses_torch" not in spec or self.uses_torch.get(str(r.get("runner_id")), True) == spec["uses_torch"]

    def pick(self, sel: Any) -> list[Figure]:
        """A selector's rows: one name, several names, or `{best_of = set}`, the set's fastest."""
        if isinstance(sel, str):
            return [self.figure(sel)]
        if isinstance(sel, list):
            return [self.figure(n) for n in sel]
        return [min(self.members(sel["best_of"]), key=lambda f: f.median)]


# a claim's other metrics: column → (what it is, the unit shown, the factor from the column's unit)
METRICS = {"load_ms": ("load", "ms", 1.0), "first_call_us": ("first call", "s", 1e-6)}
REPEAT_PREFIX = re.compile(r"^repeat \d+: outputs wrong: ")


def _float(row: Mapping[str, Any], key: str) -> float:
    try:
        v = row.get(key)
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _pairs(rows: Rows, claim: Mapping[str, Any]) -> tuple[list[tuple[Figure, Figure]], list[str]]:
    """(a, b) pairs: lists of equal length zip, a single side pairs with each; pairs not testable are left out."""
    a_sel, b_sel = claim["a"], claim["b"]
    a_list = a_sel if isinstance(a_sel, list) else [a_sel]
    b_list = b_sel if isinstance(b_sel, list) else [b_sel]
    if len(a_list) == len(b_list):
        plan = list(zip(a_list, b_list, strict=True))
    else:
        plan = [(a, b) for a in a_list for b in b_list]
    pairs, left_out = [], []
    for a, b in plan:
        try:
            pairs.append((rows.pick(a)[0], rows.pick(b)[0]))
        except NotTestable as exc:
            left_out.append(str(exc))
    if not pairs:
        raise NotTestable("; ".join(left_out))
    return pairs, left_out


def _compared(expect: str) -> Callable[[Rows, Mapping[str, Any]], Finding]:
    """a is faster / slower / about as fast as b, for every pair."""

    def check(rows: Rows, claim: Mapping[str, Any]) -> Finding:
        pairs, left_out = _pairs(rows, claim)
        margin = SAME_MARGIN if expect == "same" else MARGIN
        why = "; ".join(f"{a.name} is {phrase(a, b, margin)}" for a, b in pairs) + "."
        modal = [f"{f.name}: {rows.modes(f.name)}" for a, b in pairs for f in (a, b)
                 if compare(a, b, margin) == "unclear" and rows.modes(f.name)]
        if modal:
            why += f" Mixed: the machine has two speed modes ({'; '.join(dict.fromkeys(modal))})."
        if left_out:
            why += f" Left out: {'; '.join(left_out)}."
        return Finding(combine([verdict(expect, a, b) for a, b in pairs]),
                       "; ".join(f"{a.text()} vs {b.text()}" for a, b in pairs), why)

    return check


def fastest(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a beats every other row of the set `among` (a tie or an unclear one is mixed)."""
    (a,) = rows.pick(claim["a"])
    others = [f for f in rows.members(claim["among"]) if f.name != a.name]
    if not others:
        raise NotTestable(f"no other row matches {claim['among']}")
    runner_up = min(others, key=lambda f: f.median)
    beaten_by = [f for f in others if compare(a, f) == "slower"]
    unclear = [f for f in others if compare(a, f) in ("same", "unclear")]
    if beaten_by:
        best = min(beaten_by, key=lambda f: f.median)
        result, why = NOT, f"{best.name} is {phrase(best, a)}."
    elif unclear:
        result, why = MIXED, f"{a.name} does not clearly beat {', '.join(f.name for f in unclear)}."
    else:
        result, why = HOLDS, f"{a.name} is {phrase(a, runner_up)}, the next of the set."
    return Finding(result, f"{a.text()}; next {runner_up.text()}", why)


def ratio_at_least(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a clearly faster than b by a factor of at least `k` (mixed: clearly faster, by at least `mixed_k`)."""
    (a,) = rows.pick(claim["a"])
    (b,) = rows.pick(claim["b"])
    k, mixed_k = float(claim["k"]), float(claim.get("mixed_k", 1.0))
    times = b.median / a.median
    clearly = compare(a, b) == "faster"
    result = HOLDS if clearly and times >= k else (MIXED if clearly and times >= mixed_k else NOT)
    return Finding(result, f"{a.text()} vs {b.text()} ({number(times)}×)",
                   f"{a.name} is {phrase(a, b)}; the claim needs {number(k)}×.")


def metric_lower(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a's `metric` (e.g. load_ms, one figure per row) is lower than b's by more than the margin."""
    a, b = rows.figure(claim["a"], claim["metric"]), rows.figure(claim["b"], claim["metric"])
    return Finding(verdict("faster", a, b), f"{a.text()} vs {b.text()} (medians of the repeats)",
                   f"{a.name} is {phrase(a, b)}.")


def metric_at_least(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a's `metric` reaches `value` (e.g. a first call of seconds: compilation)."""
    metric = claim["metric"]
    a = rows.figure(claim["a"], metric)
    value = float(claim["value"]) * METRICS[metric][2]
    return Finding(HOLDS if a.median >= value else NOT, a.text(),
                   f"{a.name} is {number(a.median)} {a.unit}; the claim needs at least {number(value)} {a.unit}.")


def outputs_differ(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """The output check flags every row of `wrong` and passes every row of `right` (the tracing pitfall)."""
    wrong = [rows.row(n) for n in claim["wrong"]]
    right = [rows.row(n) for n in claim.get("right", [])]

    def ok(r: dict[str, Any]) -> bool | None:
        v = str(r.get("outputs_ok"))
        return True if v == "True" else (False if v == "False" else None)

    for r in [*wrong, *right]:
        if ok(r) is None:
            raise NotTestable(f"{r['runner']} {r.get('status')}: {r.get('message') or 'outputs not checked'}")

    def said(r: dict[str, Any]) -> str:
        if ok(r):
            return f"{r['runner']}: outputs right"
        first = REPEAT_PREFIX.sub("", str(r.get("message", "")).split("; ")[0])
        return f"{r['runner']}: outputs wrong: {first}"

    held = all(ok(r) is False for r in wrong) and all(ok(r) for r in right)
    return Finding(HOLDS if held else NOT, "; ".join(said(r) for r in [*wrong, *right]),
                   "the output check flagged every row of the first set and passed the second" if held
                   else "the outputs did not split as the claim says.")


def tail(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a's tail (p99.9, max, spikes), relative to its median, is longer than b's, with stalls of 50× or more."""
    a, b = rows.figure(claim["a"]), rows.figure(claim["b"])
    ra, rb = rows.row(a.name), rows.row(b.name)

    def said(f: Figure, r: dict[str, Any]) -> str:
        return (f"{f.name}: median {number(f.median)}, p99.9 {number(_float(r, 'p999_us'))}, "
                f"max {number(_float(r, 'max_us'))} µs, {int(_float(r, 'spikes'))} spikes > 10× median "
                f"in {int(_float(r, 'calls')) * int(_float(r, 'repeats_ok'))} calls")

    worse = [_float(ra, k) / a.median > _float(rb, k) / b.median for k in ("p999_us", "max_us")]
    stalls = _float(ra, "max_us") / a.median >= 50
    more_spikes = _float(ra, "spikes") > _float(rb, "spikes")
    if all(worse) and stalls and more_spikes:
        result, why = HOLDS, f"{a.name}'s tail is longer relative to its median and it stalls ≥ 50× its median."
    elif any(worse) or more_spikes:
        result, why = MIXED, (f"{a.name}'s tail is somewhat longer relative to its median, but no stalls of 50× its "
                              "median" if not stalls else "the tails differ in part")
    else:
        result, why = NOT, f"{b.name}'s tail is as long as {a.name}'s, relative to their medians."
    return Finding(result, f"{said(a, ra)}; {said(b, rb)}", why)


def fused(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """The optimized graphs of the rows `of` hold fusion groups (holds when any does)."""
    found = [(n, _float(rows.row(n), "fusion_groups")) for n in claim["of"]]
    found = [(n, int(g)) for n, g in found if not math.isnan(g)]
    if not found:
        raise NotTestable(f"no graph recorded for {', '.join(claim['of'])}")
    with_groups = [n for n, g in found if g]
    llvm = any("no LLVM" in str(rows.row(n).get("message", "")) for n, _ in found)
    if with_groups and len(with_groups) < len(found):
        why = (f"fusion groups only where TorchScript's CPU fuser is switched on ({', '.join(with_groups)}): it is "
               "off by default on CPU" + ("; this torch build has no LLVM, so the groups run on NNC's IR interpreter"
                                          if llvm else ""))
    else:
        why = "fusion groups in every traced graph" if with_groups else "no fusion group in any traced graph"
    return Finding(HOLDS if with_groups else NOT, "; ".join(f"{n}: {g} fusion group(s)" for n, g in found),
                   why + " (graphs in the appendix).")


def at_most_over(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """a costs at most `us` µs per call more than b (the bridge's crossing): judged on the medians' intervals."""
    a, b = rows.figure(claim["a"]), rows.figure(claim["b"])
    limit, diff = float(claim["us"]), a.median - b.median
    if math.isnan(a.low) or math.isnan(b.high):  # one repeat: the medians alone decide
        low = high = diff
    else:
        low, high = a.low - b.high, a.high - b.low
    result = HOLDS if high <= limit else (NOT if low > limit else MIXED)
    span = "" if low == high else f" (95 % intervals allow {number(low)} to {number(high)} µs)"
    return Finding(result, f"{a.text()} vs {b.text()}: {number(diff)} µs over",
                   f"{a.name} costs {number(diff)} µs per call over {b.name}{span}; the claim allows "
                   f"{number(limit)} µs.")


def refused(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """Every row of `of` was refused by its exporter with `reason` in its message, instead of running (wrong)."""
    said, held = [], True
    for name in claim["of"]:
        r = rows.row(name)
        message = str(r.get("message") or "")
        if r.get("status") == "SKIPPED" and claim["reason"].lower() in message.lower():
            said.append(f"{name}: refused ({message})")
            continue
        held = False
        if r.get("status") == "ok":
            right = "right" if str(r.get("outputs_ok")) == "True" else "wrong"
            said.append(f"{name}: exported and ran, outputs {right}")
        else:
            said.append(f"{name}: {r.get('status')} ({message or 'no reason recorded'})")
    return Finding(HOLDS if held else NOT, "; ".join(said),
                   f"the export refused the model ('{claim['reason']}') rather than record one branch" if held
                   else "the export did not refuse it as the claim says.")


def all_of(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """Several checks, one claim: holds when all hold, does not when none does, else mixed."""
    parts = [evaluate(rows, part) for part in claim["parts"]]
    return Finding(combine([p.verdict for p in parts]), "; ".join(p.ours for p in parts),
                   " ".join(p.why for p in parts))


# ------------------------------------------------------------------------------------------------------
# Sweeps: figures per batch size or thread count, compared by the same rule


def batch_floor(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """Every language has a path within `k`× the floor's µs per sample at some batch size."""
    langs = sweep.language_rows(sweep.batch_rows(rows.df), float(claim["k"]))
    if not langs:
        raise NotTestable("no batch sweep with a floor (cpp-raw) in this run")
    misses = [r for r in langs if not r["within_goal"]]
    ours = "; ".join(f"{r['language']}: {r['runner']} b={r['best_batch']} {number(r['best_per_sample_us'])} µs/sample "
                     f"({number(r['x_floor'])}× floor)" for r in langs)
    return Finding(NOT if misses else HOLDS, ours, "every language has such a path" if not misses
                   else "not within the goal: " + ", ".join(r["language"] for r in misses))


def columns_cheaper(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """Each samples-as-columns twin is faster than its usual layout at the largest batch both ran."""
    lay = sweep.layout_rows(rows.df, rows.repeat_medians)
    if not lay:
        raise NotTestable("no runner with a samples-as-columns twin in a batch sweep")
    parts = [verdict("faster", r["columns"], r["rows"]) for r in lay]
    faster = [r["runner"] for r, p in zip(lay, parts, strict=True) if p == HOLDS]
    ours = "; ".join(f"{r['runner']} b={r['batch']}: {number(r['rows'].median / r['batch'])} → "
                     f"{number(r['columns'].median / r['batch'])} µs/sample "
                     f"({r['rows'].median / r['columns'].median:.2f}×)" for r in lay)
    return Finding(combine(parts), ours,
                   f"clearly faster as columns: {', '.join(faster) or 'none'}")


def threads(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    """With more intra-op threads each row (at `batch`, if given) is `expect` = "faster" or "no faster"."""
    th = [r for r in sweep.thread_rows(rows.df, rows.repeat_medians)
          if "batch" not in claim or r["batch"] == claim["batch"]]
    if not th:
        raise NotTestable("no thread sweep in this run")
    gain = [r["runner"] for r in th if compare(r["more"], r["one"]) == "faster"]
    ours = "; ".join(f"{r['runner']} b={r['batch']}: {r['one'].median / r['more'].median:.2f}×" for r in th)
    if claim["expect"] == "faster":
        result = HOLDS if len(gain) == len(th) else (MIXED if gain else NOT)
        return Finding(result, ours, f"clearly faster with more threads: {', '.join(gain) or 'none'}")
    return Finding(NOT if gain else HOLDS, ours, "faster with more threads: " + ", ".join(gain) if gain
                   else "no row got clearly faster with more threads")


CHECKS: dict[str, Callable[[Rows, Mapping[str, Any]], Finding]] = {
    "faster": _compared("faster"),
    "slower": _compared("slower"),
    "same": _compared("same"),
    "fastest": fastest,
    "ratio_at_least": ratio_at_least,
    "metric_lower": metric_lower,
    "metric_at_least": metric_at_least,
    "outputs_differ": outputs_differ,
    "tail": tail,
    "fused": fused,
    "all": all_of,
    "batch_floor": batch_floor,
    "columns_cheaper": columns_cheaper,
    "threads": threads,
    "at_most_over": at_most_over,
    "refused": refused,
}
SWEEP_CHECKS = ("batch_floor", "columns_cheaper", "threads")
assert tuple(CHECKS) == CHECK_NAMES, "harness/claims.py lists the checks in the same order"


def evaluate(rows: Rows, claim: Mapping[str, Any]) -> Finding:
    return CHECKS[claim["check"]](rows, claim)
