"""What the sources claim about making a call cheaper, checked against one run's figures.

Each claim names the runners it needs; a claim whose runners are absent or not ok gives no row. A
difference counts only when it is larger than a margin (5 %, 10 % for "about as fast") *and* it survives
the noise: given the per-repeat medians, the 95 % bootstrap interval of the paired ratio (repeat k of every
runner ran side by side, so a drift of the machine's speed hits both) must exclude 1; without them, the
two medians' 95 % intervals must not overlap. "No difference" likewise needs the interval within the
margin; anything in between is "mixed", not a verdict either way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.runners import RUNNERS
from harness.stats import ratio_ci

MARGIN = 0.05  # a smaller relative difference is no difference
SAME_MARGIN = 0.10  # "about as fast": BRIEF.md's lite 72 µs vs traced 67 µs (7 %) counts as the same
FIRST_CALL_SLOW_US = 1e6  # a first call over a second is "seconds of compilation"

HOLDS, NOT, MIXED = "holds", "does not hold", "mixed"
RULE = (f"a difference counts when it exceeds {MARGIN * 100:.0f} % ({SAME_MARGIN * 100:.0f} % for \"about as fast\") "
        "and the 95 % interval of the ratio over the repeats run side by side (paired bootstrap) excludes 1; "
        "\"the same\" needs that interval within the margin")


@dataclass(frozen=True)
class Figure:
    """One ok runner's median per call and its 95 % interval (NaN when the run had too few repeats)."""

    name: str
    median: float
    low: float
    high: float
    row: dict[str, Any]
    repeats: tuple[float, ...] = ()  # the median of each repeat, in run order (for paired comparisons)

    def text(self) -> str:
        ci = "" if math.isnan(self.low) or math.isnan(self.high) else f" [{_num(self.low)}–{_num(self.high)}]"
        return f"{self.name} {_num(self.median)}{ci} µs"


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:,.0f}"


def _float(row: dict[str, Any], key: str) -> float:
    v = row.get(key)
    try:
        return float("nan") if v is None else float(v)
    except (TypeError, ValueError):
        return float("nan")


def _figures(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]]) -> list[Figure]:
    """Every ok row with a median, in the table's order."""
    out = []
    for row in df.to_dict("records"):
        if row.get("status") != "ok" or math.isnan(_float(row, "median_us")):
            continue
        name = str(row["runner"])
        out.append(Figure(name, _float(row, "median_us"), _float(row, "median_ci_low_us"),
                          _float(row, "median_ci_high_us"), row, tuple(repeat_medians.get(name, ()))))
    return out


def _find(figs: list[Figure], runner_id: str, grad_mode: str | None = None) -> Figure | None:
    """The row of a registry runner: under `grad_mode` if given, else the registry's own variant first."""
    rows = [f for f in figs if f.row.get("runner_id", f.name) == runner_id]
    if grad_mode is not None:
        rows = [f for f in rows if f.row.get("grad_mode") == grad_mode]
    rows.sort(key=lambda f: f.name != runner_id)  # the variant named like the registry entry is its default
    return rows[0] if rows else None


def _language(f: Figure) -> str:
    reg = RUNNERS.get(str(f.row.get("runner_id", f.name)))
    return str(f.row.get("language") or (reg.language if reg else "?"))


def _uses_torch(f: Figure) -> bool:
    reg = RUNNERS.get(str(f.row.get("runner_id", f.name)))
    return reg.uses_torch if reg else True


def paired_ratio_ci(a: Figure, b: Figure) -> tuple[float, float] | None:
    """95 % interval of a/b over repeats that ran side by side; None without three paired repeats."""
    if len(a.repeats) != len(b.repeats) or len(a.repeats) < 3:
        return None
    lo, hi = ratio_ci(np.array(a.repeats), np.array(b.repeats), paired=True)
    return None if math.isnan(lo) or math.isnan(hi) else (lo, hi)


def ratio_bounds(a: Figure, b: Figure) -> tuple[float, float, str] | None:
    """Where a/b may lie given the noise: the paired interval, else the two medians' intervals, else None."""
    paired = paired_ratio_ci(a, b)
    if paired is not None:
        return (*paired, "paired 95 % interval")
    if any(math.isnan(x) or x <= 0 for x in (a.low, a.high, b.low, b.high)):
        return None
    return a.low / b.high, a.high / b.low, "95 % interval"


def compare(a: Figure, b: Figure, margin: float = MARGIN) -> str:
    """a against b: 'faster' / 'slower' beyond the margin and the noise, 'same' within both, else 'unclear'.

    "Within the noise" alone is not "the same": a wide interval around 1 says nothing either way.
    """
    r = a.median / b.median
    bounds = ratio_bounds(a, b)
    if bounds is None:  # one repeat: the point estimates are all there is
        return "same" if abs(r - 1) < margin else ("faster" if r < 1 else "slower")
    lo, hi, _ = bounds
    if r < 1 - margin and hi < 1:
        return "faster"
    if r > 1 + margin and lo > 1:
        return "slower"
    if abs(r - 1) < margin and 1 - margin <= lo and hi <= 1 + margin:
        return "same"
    return "unclear"


def _ratio(a: Figure, b: Figure) -> str:
    r = a.median / b.median
    return f"{1 / r:.2g}× faster" if r < 1 else f"{r:.2g}× slower"


def _phrase(a: Figure, b: Figure, margin: float = MARGIN) -> str:
    """How a compares with b, in words: "2.1× faster than b", "within 5 % of b", …"""
    how = compare(a, b, margin)
    if how == "same":
        return f"within {margin * 100:.0f} % of {b.name}"
    if how != "unclear":
        return f"{_ratio(a, b)} than {b.name}"
    lo, hi, kind = ratio_bounds(a, b) or (math.nan, math.nan, "")
    r = a.median / b.median
    if abs(r - 1) < margin:
        return f"within {margin * 100:.0f} % of {b.name} in median, but the ratio's {kind} {lo:.2f}–{hi:.2f} is wider"
    return f"{_ratio(a, b)} than {b.name} in median, but the ratio's {kind} {lo:.2f}–{hi:.2f} includes 1"


def _faster(a: Figure, b: Figure) -> str:
    """Verdict on "a is faster than b" (no difference is not a speed-up)."""
    return {"faster": HOLDS, "slower": NOT, "same": NOT, "unclear": MIXED}[compare(a, b)]


def _slower(a: Figure, b: Figure) -> str:
    """Verdict on "a is slower than b"."""
    return {"slower": HOLDS, "faster": NOT, "same": NOT, "unclear": MIXED}[compare(a, b)]


def _combine(parts: list[str]) -> str:
    if all(p == HOLDS for p in parts):
        return HOLDS
    if all(p == NOT for p in parts):
        return NOT
    return MIXED


def _row(claim: str, source: str, ours: str, verdict: str, why: str) -> dict[str, str]:
    return {"claim": claim, "source": source, "ours": ours, "verdict": verdict, "why": why}


def _torchscript_vs_eager(figs: list[Figure]) -> dict[str, str] | None:
    ts, eager = _find(figs, "python-torchscript", "default"), _find(figs, "python-eager", "default")
    if not (ts and eager):
        return None
    return _row("TorchScript (traced) from Python is faster than eager Python",
                "seed 000: Python 124 s vs TorchScript 54 s per 1M calls (2.3×); BRIEF: ~104 vs ~67 µs",
                f"{ts.text()} vs {eager.text()}", _faster(ts, eager), f"{ts.name} is {_phrase(ts, eager)}.")


def _grad_modes(figs: list[Figure]) -> dict[str, str] | None:
    base = _find(figs, "python-eager", "default")
    variants = [f for f in (_find(figs, "python-eager", "inference"), _find(figs, "python-eager", "no_grad")) if f]
    if not (base and variants):
        return None
    return _row("inference_mode and no_grad make eager calls faster than the default grad mode",
                "BRIEF: eager ~104 µs, under inference_mode ~69 µs (no figure for no_grad)",
                "; ".join(v.text() for v in variants) + f" vs {base.text()}",
                _combine([_faster(v, base) for v in variants]),
                "; ".join(f"{v.row.get('grad_mode')}: {_phrase(v, base)}" for v in variants) + ".")


def _frozen_fastest(figs: list[Figure]) -> dict[str, str] | None:
    frozen = _find(figs, "python-torchscript-frozen")
    if frozen is None:
        return None
    others = [f for f in figs if f is not frozen and _language(f) == "Python" and _uses_torch(f)]
    if not others:
        return None
    beaten_by = [f for f in others if compare(frozen, f) == "slower"]
    unclear = [f for f in others if compare(frozen, f) in ("same", "unclear")]
    runner_up = min(others, key=lambda f: f.median)
    if beaten_by:
        best = min(beaten_by, key=lambda f: f.median)
        verdict, why = NOT, f"{best.name} is {_phrase(best, frozen)}."
    elif unclear:
        verdict, why = MIXED, f"{frozen.name} does not clearly beat {', '.join(f.name for f in unclear)}."
    else:
        verdict, why = HOLDS, f"{frozen.name} is {_phrase(frozen, runner_up)}, the next libtorch path from Python."
    return _row("Scripted + frozen + optimize_for_inference is the fastest libtorch path from Python",
                "BRIEF: ~38 µs vs traced ~67 µs, eager under inference_mode ~69 µs",
                f"{frozen.text()}; next {runner_up.text()}", verdict, why)


def _lite_vs_traced(figs: list[Figure]) -> dict[str, str] | None:
    lite, ts = _find(figs, "python-lite"), _find(figs, "python-torchscript")
    if not (lite and ts):
        return None
    verdict = {"same": HOLDS, "unclear": MIXED}.get(compare(lite, ts, SAME_MARGIN), NOT)
    ours = f"{lite.text()} vs {ts.text()}"
    scripted = _find(figs, "python-torchscript-scripted")
    load_lite = _float(lite.row, "load_ms")
    if scripted and not math.isnan(load_lite):
        ours += f"; load .ptl {_num(load_lite)} ms vs .pt {_num(_float(scripted.row, 'load_ms'))} ms"
    return _row("The lite interpreter (.ptl) runs about as fast as traced TorchScript",
                "BRIEF: lite ~72 µs vs traced ~67 µs", ours, verdict,
                f"{lite.name} is {_phrase(lite, ts, SAME_MARGIN)}.")


def _compile(figs: list[Figure]) -> dict[str, str] | None:
    comp = _find(figs, "python-compile")
    eager = _find(figs, "python-eager", str(comp.row.get("grad_mode"))) if comp else None
    if not (comp and eager):
        return None
    first_us = _float(comp.row, "first_call_us")
    slow_first = not math.isnan(first_us) and first_us >= FIRST_CALL_SLOW_US
    first = f"first call {first_us / 1e6:.1f} s" if not math.isnan(first_us) else "first call not recorded"
    return _row("torch.compile does not pay off for a model this small: slower per call, seconds to compile",
                "BRIEF: ~114 µs vs eager ~104 µs; first call ~20 s", f"{comp.text()} vs {eager.text()}; {first}",
                _combine([_slower(comp, eager), HOLDS if slow_first else NOT]),
                f"{comp.name} is {_phrase(comp, eager)} per call; "
                + (f"its first call took {first_us / 1e6:.1f} s." if not math.isnan(first_us) else f"{first}."))


def _quant(figs: list[Figure]) -> dict[str, str] | None:
    quant = _find(figs, "python-quant-dynamic")
    eager = _find(figs, "python-eager", str(quant.row.get("grad_mode"))) if quant else None
    if not (quant and eager):
        return None
    reg = RUNNERS.get("python-quant-dynamic")
    tol = f", outputs within atol {reg.tolerance[0]:g} + rtol {reg.tolerance[1]:g}" if reg and reg.tolerance else ""
    err = _float(quant.row, "max_abs_err")
    ours = f"{quant.text()} vs {eager.text()}{tol}" + ("" if math.isnan(err) else f" (max error {err:.2g})")
    return _row("Dynamic int8 quantization is slower than float32 on a model this small",
                "BRIEF: ~175 µs vs eager ~104 µs", ours, _slower(quant, eager),
                f"{quant.name} is {_phrase(quant, eager)}.")


def _ort_vs_torchscript(figs: list[Figure]) -> dict[str, str] | None:
    ort = _find(figs, "python-onnxruntime")
    jits = [f for rid in ("python-torchscript", "python-torchscript-scripted", "python-torchscript-frozen")
            if (f := _find(figs, rid))]
    if not (ort and jits):
        return None
    parts = [_faster(ort, j) for j in jits]
    verdict = _combine(parts)
    if verdict == MIXED:
        beaten = [j.name for j, p in zip(jits, parts, strict=True) if p == HOLDS]
        why = f"{ort.name} is clearly faster only than {', '.join(beaten) or 'none of them'}."
    else:  # the telling comparison: the fastest TorchScript path when it holds, the slowest when it does not
        j = min(jits, key=lambda f: f.median) if verdict == HOLDS else max(jits, key=lambda f: f.median)
        why = f"{ort.name} is {_phrase(ort, j)}."
    return _row("ONNX Runtime from Python is faster than TorchScript from Python",
                "not measured in the sources; BRIEF: TorchScript from Python ~67 µs traced, ~38 µs frozen",
                f"{ort.text()} vs " + ", ".join(j.text() for j in jits), verdict, why)


def _cpp_api_vs_python(figs: list[Figure]) -> dict[str, str] | None:
    api = _find(figs, "cpp-api")
    python = [f for f in figs if _language(f) == "Python"]
    if not (api and python):
        return None
    best = min(python, key=lambda f: f.median)
    return _row("The C++ API beats every way of calling the model from Python",
                "seed 000: C++ API 9 s vs TorchScript from Python 54 s per 1M calls; BRIEF: ~14–17 vs ~38 µs",
                f"{api.text()} vs the best Python path, {best.text()}", _faster(api, best),
                f"{api.name} is {_phrase(api, best)}.")


def _overhead_dominates(figs: list[Figure]) -> dict[str, str] | None:
    raw = _find(figs, "cpp-raw")
    libtorch = [f for f in figs if _uses_torch(f)]
    if not (raw and libtorch):
        return None
    best = min(libtorch, key=lambda f: f.median)
    share = raw.median / best.median
    verdict = HOLDS if share < 0.01 else (MIXED if share < 0.1 else NOT)
    return _row("The cost of a call is overhead, not arithmetic (seed 000's premise)",
                "BRIEF: hand-written loop ~0.04 µs vs C++ API ~14–17 µs",
                f"{raw.text()} vs the fastest libtorch call, {best.text()}", verdict,
                f"the arithmetic is {share * 100:.2g} % of the fastest libtorch call.")


CLAIMS: tuple[Callable[[list[Figure]], dict[str, str] | None], ...] = (
    _torchscript_vs_eager, _grad_modes, _frozen_fastest, _lite_vs_traced, _compile, _quant,
    _ort_vs_torchscript, _cpp_api_vs_python, _overhead_dominates,
)


def verdicts(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]] | None = None) -> list[dict[str, str]]:
    """One row {claim, source, ours, verdict, why} per claim the run's ok runners can test, in a fixed order.

    `repeat_medians` (summary.json's, runner name → µs per repeat) allows paired comparisons.
    """
    figs = _figures(df, repeat_medians or {})
    return [row for claim in CLAIMS if (row := claim(figs)) is not None]
