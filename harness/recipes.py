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
import re
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

# ---------------------------------------------------------------------------------------------------------
# Seed 002: the op chain and the tracing pitfall


def _named(figs: list[Figure], name: str) -> Figure | None:
    return next((f for f in figs if f.name == name), None)


def _int(row: dict[str, Any], key: str) -> int | None:
    v = _float(row, key)
    return None if math.isnan(v) else int(v)


def _chain_traced(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    eager, fused = _find(figs, "python-eager"), _find(figs, "python-torchscript-nnc")
    traced = _find(figs, "python-torchscript")
    if not (eager and (fused or traced)):
        return None
    best = min((f for f in (fused, traced) if f), key=lambda f: f.median)
    speedup = eager.median / best.median
    verdict = HOLDS if compare(best, eager) == "faster" and speedup >= 10 else (
        MIXED if compare(best, eager) == "faster" else NOT)
    groups = _int(best.row, "fusion_groups")
    ours = f"{eager.text()} vs {best.text()} ({speedup:.3g}×)"
    if traced and fused and best is fused:
        ours += f"; traced without the CPU fuser {traced.text()}"
    return _row("Tracing and fusing the add chain makes it ~100× faster than eager",
                "seed 002: 1.74 ms eager vs ~11 µs traced and fused (≈100×)", ours, verdict,
                f"{best.name} is {_phrase(best, eager)}" + (f"; its optimized graph has {groups} fusion group(s)"
                                                           if groups is not None else "") + ".")


def _chain_fusion(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    found = [(r["runner"], _int(r, "fusion_groups")) for r in rows
             if r.get("runner_id") in ("python-torchscript", "python-torchscript-nnc")
             and _int(r, "fusion_groups") is not None]
    if not found:
        return None
    fused = [name for name, n in found if n]
    ours = "; ".join(f"{name}: {n} fusion group(s)" for name, n in found)
    verdict = HOLDS if fused else NOT
    llvm = [r for r in rows if "no LLVM" in str(r.get("message", ""))]
    why = (f"fusion groups only where TorchScript's CPU fuser is switched on ({', '.join(fused)}): it is off by "
           "default on CPU" + ("; this torch build has no LLVM, so the groups run on NNC's IR interpreter"
                               if llvm else "") if fused and len(fused) < len(found) else
           "fusion groups in every traced graph" if fused else "no fusion group in any traced graph")
    return _row("The traced chain's graph is fused (prim::FusionGroup in graph_for(x); today prim::TensorExprGroup)",
                "seed 002 (0.4.0 era, fuser on by default)", ours, verdict, why + " (graphs in the appendix).")


def _chain_scripted(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    eager, scripted = _find(figs, "python-eager"), _find(figs, "python-torchscript-scripted")
    if not (eager and scripted):
        return None
    return _row("Scripting the chain is slower than eager: the loop is interpreted",
                "seed 002: 13.4 ms scripted vs 1.74 ms eager", f"{scripted.text()} vs {eager.text()}",
                _slower(scripted, eager), f"{scripted.name} is {_phrase(scripted, eager)}.")


def _chain_compiled(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    eager, comp = _find(figs, "python-eager"), _find(figs, "python-compile")
    if not (eager and comp):
        return None
    first = _float(comp.row, "first_call_us")
    return _row("torch.compile of the chain (not in the sources) is faster than eager per call",
                "seed 002 predates torch.compile", f"{comp.text()} vs {eager.text()}; first call "
                f"{first / 1e6:.1f} s", _faster(comp, eager), f"{comp.name} is {_phrase(comp, eager)}.")


def _pitfall(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    traced = [r for r in rows if RUNNERS.get(str(r.get("runner_id"))) and
              RUNNERS[str(r["runner_id"])].model_file == "model.ts.pt" and r.get("runner_id") != "python-eager"]
    scripted = [r for r in rows if r.get("runner_id") == "python-torchscript-scripted"]
    if not traced:
        return None
    caught = [r for r in traced if r.get("outputs_ok") is False or str(r.get("outputs_ok")) == "False"]
    right = [r for r in scripted if str(r.get("outputs_ok")) == "True"]
    ours = "; ".join(f"{r['runner']}: " + ("outputs wrong: " + re.sub(r"^repeat \d+: outputs wrong: ", "", str(
        r.get("message", "")).split("; ")[0]) if r in caught else "outputs right") for r in traced)
    if scripted:
        ours += "; " + "; ".join(f"{r['runner']}: outputs {'right' if r in right else 'wrong'}" for r in scripted)
    verdict = HOLDS if len(caught) == len(traced) and len(right) == len(scripted) else NOT
    return _row("Tracing silently breaks data-dependent control flow; scripting keeps it (the output check catches it)",
                "seed 002: a trace records one run; control flow that depends on data is lost", ours, verdict,
                "every traced file took the example's branch for all inputs and the output check flagged it; "
                "the scripted file matched the reference" if verdict == HOLDS
                else "the traced and scripted outputs did not split as the claim says.")


# ---------------------------------------------------------------------------------------------------------
# Seed 001: libtorch tips in C++


def _vstack(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    vstack = _find(figs, "cpp-api-vstack")
    base = next((f for f in figs if f.row.get("runner_id") == "cpp-api" and vstack
                 and _float(f.row, "batch") == _float(vstack.row, "batch")), None)
    if not (vstack and base):
        return None
    return _row(f"Joining {int(_float(base.row, 'batch'))} small tensors with vstack is much slower than one from_blob",
                "seed 001 tip 2: \"very slow\" (no figure)", f"{vstack.text()} vs {base.text()} per call",
                _slower(vstack, base), f"{vstack.name} is {_phrase(vstack, base)}.")


def _mask(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    mask, index = _find(figs, "cpp-api-mask"), _find(figs, "cpp-api-index")
    if not (mask and index):
        return None
    return _row("Boolean-mask indexing in the hot loop is slower than indices computed once",
                "seed 001 tip 3: the mask is converted to indices (and allocates) in every call",
                f"{mask.text()} vs {index.text()} per call", _slower(mask, index),
                f"{mask.name} is {_phrase(mask, index)}.")


def _tails(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    ts = next((f for f in figs if f.row.get("runner_id") == "cpp-torchscript" and _float(f.row, "batch") in (1, 1.0)),
              None)
    api = next((f for f in figs if f.name == "cpp-api"), None)
    if not (ts and api):
        return None

    def tail(f: Figure) -> str:
        return (f"{f.name}: median {_num(f.median)}, p99.9 {_num(_float(f.row, 'p999_us'))}, "
                f"max {_num(_float(f.row, 'max_us'))} µs, {int(_float(f.row, 'spikes'))} spikes > 10× median "
                f"in {int(_float(f.row, 'calls')) * int(_float(f.row, 'repeats_ok'))} calls")

    worse = [_float(ts.row, k) / ts.median > _float(api.row, k) / api.median for k in ("p999_us", "max_us")]
    stalls = _float(ts.row, "max_us") / ts.median >= 50
    more_spikes = _float(ts.row, "spikes") > _float(api.row, "spikes")
    if all(worse) and stalls and more_spikes:
        verdict, why = HOLDS, "TorchScript's tail is longer relative to its median and it stalls ≥ 50× its median."
    elif any(worse) or more_spikes:
        verdict, why = MIXED, ("TorchScript's tail is somewhat longer relative to its median, but no second-long "
                               "stalls like the source's" if not stalls else "the tails differ in part")
    else:
        verdict, why = NOT, "the C++ API's tail is as long as TorchScript's, relative to their medians."
    return _row("TorchScript from C++ has a long tail (occasional stalls); the C++ API is stably fast",
                "seed 001 tip 1: TorchScript ~20 ms usually, occasionally ~1 s; the C++ API stable",
                f"{tail(ts)}; {tail(api)}", verdict, why)


# ---------------------------------------------------------------------------------------------------------
# Seed 003: the mobile recipe (ConvBnReLU)


def _pairs(figs: list[Figure], variant: str, base: str, what: str, claim: str, source: str,
           rows: list[dict[str, Any]], faster: bool = True) -> dict[str, str] | None:
    """One claim over the Python and the C++ pair (variant vs base runner), whichever ran."""
    pairs = []
    for lang in ("python", "cpp"):
        a, b = _find(figs, f"{lang}-{variant}"), _find(figs, f"{lang}-{base}")
        if a and b:
            pairs.append((a, b))
    skipped = [r for r in rows if str(r.get("runner_id", "")).endswith(variant) and r.get("status") == "SKIPPED"]
    if not pairs:
        if skipped:
            return _row(claim, source, f"{skipped[0]['runner']} SKIPPED: {skipped[0].get('message', '')}",
                        "not testable here", "this build cannot make the export (see the row's reason).")
        return None
    verdict = _combine([(_faster if faster else _slower)(a, b) for a, b in pairs])
    return _row(claim, source, "; ".join(f"{a.text()} vs {b.text()}" for a, b in pairs), verdict,
                "; ".join(f"{a.name} is {_phrase(a, b)}" for a, b in pairs) + f" ({what}).")


def _fuse(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    return _pairs(figs, "torchscript-fused", "torchscript", "Conv+BN+ReLU folded into one module",
                  "fuse_modules (Conv+BN+ReLU) makes the call faster", "seed 003 recipe 1 (no figure)", rows)


def _int8(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    return _pairs(figs, "torchscript-int8", "torchscript", "fbgemm, outputs within the runner's int8 tolerance",
                  "Static int8 quantization makes the call faster than float32",
                  "seed 003 recipe 2 (qnnpack on mobile, fbgemm on x86; no figure)", rows)


def _qnnpack(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    q, f = _find(figs, "python-torchscript-int8-qnnpack"), _find(figs, "python-torchscript-int8")
    if not q:
        skipped = [r for r in rows if r.get("runner_id") == "python-torchscript-int8-qnnpack"]
        if skipped and skipped[0].get("status") == "SKIPPED":
            return _row("The qnnpack engine (mobile) runs static int8 here too", "seed 003 recipe 2",
                        f"SKIPPED: {skipped[0].get('message', '')}", "not testable here", "see the row's reason.")
        return None
    base = _find(figs, "python-torchscript")
    ours = f"{q.text()}" + (f" vs fbgemm {f.text()}" if f else "") + (f" vs float32 {base.text()}" if base else "")
    return _row("The qnnpack engine (mobile) runs static int8 here too; on x86 fbgemm is the faster engine",
                "seed 003 recipe 2: qconfig qnnpack on mobile, fbgemm on x86", ours,
                _faster(f, q) if f else MIXED, f"{f.name} is {_phrase(f, q)}." if f else "no fbgemm row to compare.")


def _channels_last(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    return _pairs(figs, "torchscript-cl", "torchscript", "input converted to channels_last in every call",
                  "channels_last memory format makes the call faster",
                  "seed 003 recipe 4: 3× faster than NCHW on MobileNetV2", rows)


def _mobile(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    return _pairs(figs, "torchscript-mobile", "torchscript", "optimize_for_mobile's rewrites",
                  "optimize_for_mobile makes the call faster (needs XNNPACK)",
                  "seed 003 recipe 3: some builds lack XNNPACK and must say so clearly", rows)


def _load_times(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    fb, lite = _find(figs, "python-lite-flatbuffer"), _find(figs, "python-lite")
    if not (fb and lite):
        return None
    a, b = _float(fb.row, "load_ms"), _float(lite.row, "load_ms")
    pt = _find(figs, "python-torchscript")
    ours = f"load {fb.name} {_num(a)} ms vs {lite.name} {_num(b)} ms" + (
        f" vs .pt (torch.jit.load) {_num(_float(pt.row, 'load_ms'))} ms" if pt else "") + " (median of the repeats)"
    verdict = HOLDS if a < (1 - MARGIN) * b else NOT
    return _row("A FlatBuffer .ptl loads faster than the classic lite .ptl",
                "seed 003 recipe 6: 20 loads of DeepLabV3 0.539 s vs 0.039 s; 3–6× on devices", ours, verdict,
                f"FlatBuffer load is {b / a:.2g}× faster." if a < b else f"FlatBuffer load is {a / b:.2g}× slower.")


def _java_reuse(figs: list[Figure], rows: list[dict[str, Any]]) -> dict[str, str] | None:
    reuse, alloc = _find(figs, "java-torchscript-reuse"), _find(figs, "java-torchscript")
    if not (reuse and alloc):
        return None
    return _row("In Java, reusing one input buffer beats allocating one per call",
                "seed 003 recipe 5: Tensor.allocateFloatBuffer once + Tensor.fromBlob(buffer, shape)",
                f"{reuse.text()} vs {alloc.text()}", _faster(reuse, alloc), f"{reuse.name} is {_phrase(reuse, alloc)}.")


KIND_CLAIMS: dict[str, tuple[Callable[[list[Figure], list[dict[str, Any]]], dict[str, str] | None], ...]] = {
    "op_chain": (_chain_traced, _chain_fusion, _chain_scripted, _chain_compiled),
    "mlp_branch": (_pitfall,),
    "mlp": (_vstack, _mask, _tails, _java_reuse),
    "conv_bn_relu": (_fuse, _int8, _qnnpack, _channels_last, _mobile, _load_times, _java_reuse),
}


def _swept(df: pd.DataFrame) -> bool:
    """Rows that are sweep variants (a batch or thread suffix): the single-setting claims do not apply."""
    if "family" not in df.columns:
        return False
    return bool((df["family"].fillna(df["runner"]) != df["runner"]).any())


def verdicts(df: pd.DataFrame, repeat_medians: Mapping[str, Sequence[float]] | None = None,
             kind: str = "mlp") -> list[dict[str, str]]:
    """One row {claim, source, ours, verdict, why} per claim the run's ok runners can test, in a fixed order.

    `repeat_medians` (summary.json's, runner name → µs per repeat) allows paired comparisons; `kind` is the
    model kind of the run (each kind's own claims).
    """
    if _swept(df):
        return []
    figs = _figures(df, repeat_medians or {})
    rows = df.to_dict("records")
    out = [row for claim in CLAIMS if kind == "mlp" and (row := claim(figs)) is not None]
    out += [row for claim in KIND_CLAIMS.get(kind, ()) if (row := claim(figs, rows)) is not None]
    return out
