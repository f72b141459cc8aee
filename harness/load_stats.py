"""The load run's figures as the report shows them: peak rate at the bound, scaling with callers, the plot.

Reads load.json (harness/load.py). Scaling efficiency is calls per second at N callers over N times those at one;
a machine with fewer cores than callers cannot scale that far, so such figures are flagged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from harness.rule import number

TWO_CALLERS = 1.8  # the question asked of each language: do 2 callers give at least 1.8x the calls of 1?
SCHEDULER_LIMIT = 0.02  # the scheduler's own latency at the peak rate, as a share of the path's there
PLOT = "load.png"


def read(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "load.json"
    return json.loads(path.read_text()) if path.exists() else None


def _rate(v: float | None) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:,.0f}"


def _us(v: float | None) -> str:
    return "—" if v is None else ("unissued" if not math.isfinite(v) else number(v))


def scaling(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Per N: calls per second, p50/p99 and the efficiency against N = 1 ("threads" or "processes")."""
    ms = entry.get(kind, [])
    one = next((m for m in ms if m["callers"] == 1 and m["ok"]), None)
    out = []
    for m in ms:
        row = {"callers": m["callers"], "ok": m["ok"], "problem": m.get("problem", "")}
        if m["ok"]:
            row.update(calls_per_s=m["calls_per_s"], p50_us=m["p50_us"], p99_us=m["p99_us"],
                       speedup=m["calls_per_s"] / one["calls_per_s"] if one else None,
                       shared_model=m.get("shared_model"), note=m.get("note", ""))
            row["efficiency"] = row["speedup"] / m["callers"] if row["speedup"] is not None else None
        out.append(row)
    return out


def verdicts(record: dict[str, Any]) -> list[str]:
    """Per language (its fastest path, the first chosen): whether 2 callers give ≥ 1.8× the calls of 1."""
    lines, seen = [], set()
    for e in record["paths"]:
        if e["language"] in seen or "threads" not in e:
            continue
        seen.add(e["language"])
        parts = []
        for kind in ("threads", "processes"):
            two = next((r for r in scaling(e, kind) if r["callers"] == 2 and r["ok"]), None)
            if two is None or two["speedup"] is None:
                parts.append(f"2 {kind}: not measured")
                continue
            holds = "holds" if two["speedup"] >= TWO_CALLERS else "does not hold"
            parts.append(f"2 {kind}: {two['speedup']:.2f}× ({holds})")
        lines.append(f"- **{e['language']}** ({e['row']}): " + "; ".join(parts))
    return lines


def peak_table(record: dict[str, Any]) -> str:
    head = ("| language | row | one call µs | peak calls/s at p99 ≤ bound | p99 µs there | held for the full duration "
            "| calls/s calling flat out | result | why |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for e in record["paths"]:
        s = e.get("server")
        if s is None:
            lines.append(f"| {e['language']} | {e['row']} | {_us(e['single_us'])} | — | — | — | — | not run | "
                         f"{e.get('problem', '')} |")
            continue
        final = s.get("final") or {}
        held = "—" if not final else ("yes" if final.get("passes") else "**no**")
        lines.append(f"| {e['language']} | {e['row']} | {_us(e['single_us'])} | {_rate(s.get('peak_per_s'))} | "
                     f"{_us(final.get('p99_us'))} | {held} | {_rate(s.get('capacity_per_s'))} | {s['validity']} | "
                     f"{s.get('reason', '')} |")
    return "\n".join(lines)


def scaling_table(record: dict[str, Any]) -> str:
    cores = record["cores"]
    lines = ["| row | callers | how | calls/s | × one caller | efficiency | p50 µs | p99 µs | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in record["paths"]:
        for kind in ("threads", "processes"):
            for r in scaling(e, kind):
                flag = f" ⚠ more callers than the {cores} cores" if r["callers"] > cores else ""
                if not r["ok"]:
                    lines.append(f"| {e['row']} | {r['callers']} | {kind} | — | — | — | — | — | "
                                 f"FAILED: {r['problem']}{flag} |")
                    continue
                speedup = "—" if r["speedup"] is None else f"{r['speedup']:.2f}×"
                eff = "—" if r["efficiency"] is None else f"{100 * r['efficiency']:.0f} %"
                note = "one process: the 1-thread figure" if kind == "processes" and r["callers"] == 1 else (
                    r["note"] if kind == "threads" and r["callers"] > 1 else "")
                lines.append(f"| {e['row']} | {r['callers']} | {kind} | {_rate(r['calls_per_s'])} | {speedup} | {eff} "
                             f"| {_us(r['p50_us'])} | {_us(r['p99_us'])} | {note}{flag} |")
    return "\n".join(lines)


def scheduler(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The scheduler's share at the peak: its own latency (the no-op stand-in for each call, the same arrivals)
    over the path's in the search's passing run at that rate (the same rate, seed and duration), at p50 and p99;
    None when no peak was found."""
    server, noop = entry.get("server") or {}, entry.get("scheduler")
    if noop is None:
        return None
    same = next((t for t in server.get("tries", []) if t.get("rate") == noop.get("rate") and t.get("passes")), None)
    final = same or server.get("final")
    if not final:
        return None
    if not noop["ok"] or not final["ok"]:
        return {"ok": False, "problem": noop.get("problem") or final.get("problem", "")}
    shares = {q: noop[f"{q}_us"] / final[f"{q}_us"] if final[f"{q}_us"] > 0 else math.inf for q in ("p50", "p99")}
    return {"ok": True, "rate": noop["rate"], "p50_us": noop["p50_us"], "p99_us": noop["p99_us"],
            "path_p50_us": final["p50_us"], "path_p99_us": final["p99_us"], "share_p50": shares["p50"],
            "share_p99": shares["p99"], "within": shares["p50"] <= SCHEDULER_LIMIT}


def scheduler_table(record: dict[str, Any]) -> str:
    lines = ["| row | rate /s | scheduler p50 µs | path p50 µs | share | scheduler p99 µs | path p99 µs | share | "
             f"p50 share ≤ {100 * SCHEDULER_LIMIT:g} % |", "|---|---|---|---|---|---|---|---|---|"]
    for e in record["paths"]:
        s = scheduler(e)
        if s is None:
            continue
        if not s["ok"]:
            lines.append(f"| {e['row']} | — | — | — | — | — | — | — | FAILED: {s['problem']} |")
            continue
        lines.append(f"| {e['row']} | {_rate(s['rate'])} | {_us(s['p50_us'])} | {_us(s['path_p50_us'])} | "
                     f"{100 * s['share_p50']:.1f} % | {_us(s['p99_us'])} | {_us(s['path_p99_us'])} | "
                     f"{100 * s['share_p99']:.1f} % | {'yes' if s['within'] else '**no**'} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def offline_table(record: dict[str, Any]) -> str:
    """Samples per second at each batch size of the offline run, per path, and the best."""
    paths = [e for e in record["paths"] if "offline" in e]
    if not paths:
        return ""
    batches = [r["batch"] for r in paths[0]["offline"]["batches"]]
    lines = ["| row | " + " | ".join(f"batch {b}: samples/s" for b in batches) + " | best |",
             "|---|" + "---|" * len(batches) + "---|"]
    for e in paths:
        o = e["offline"]
        cells = [(_rate(r["samples_per_s"]) + (" ¹" if r.get("own") else "")) if r["ok"] else f"— ({r['problem']})"
                 for r in o["batches"]]
        best = "—" if o["best_batch"] is None else f"{_rate(o['best_samples_per_s'])} at batch {o['best_batch']}"
        lines.append(f"| {e['row']} | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines)


def plot(record: dict[str, Any], path: Path) -> bool:
    """p99 against achieved calls per second for every server rate tried, per path, log axes."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    drawn = False
    for e in record["paths"]:
        s = e.get("server") or {}
        points = [t for t in [*s.get("tries", []), *(s[k] for k in ("failed_final", "final") if s.get(k))]
                  if t.get("ok") and math.isfinite(t["p99_us"]) and t["calls_per_s"] > 0]
        if not points:
            continue
        points.sort(key=lambda t: t["calls_per_s"])
        ax.plot([t["calls_per_s"] for t in points], [t["p99_us"] for t in points], marker="o", label=e["row"])
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    bound = record["spec"]["bound_ms"] * 1000
    ax.axhline(bound, color="grey", linestyle="--", linewidth=1, label=f"bound {record['spec']['bound_ms']:g} ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("calls per second (achieved, Poisson arrivals)")
    ax.set_ylabel("p99 latency from scheduled arrival (µs)")
    ax.set_title("Throughput against latency, per path")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def wall_line(record: dict[str, Any]) -> str:
    """The load phase's wall time split into each path's set durations and the rest (process start-ups, model
    loads, the harness's checks), and the offline run's: where a load run's minutes go."""
    spec, parts = record["spec"], []
    for e in record["paths"]:
        if "wall_s" not in e:
            continue
        s = e.get("server") or {}
        runs = [*e.get("threads", []), *[m for m in e.get("processes", []) if "same_as" not in m]]
        fulls = sum(1 for k in ("failed_final", "final") if s.get(k))
        fixed = len(runs) * spec["closed_s"] + len(s.get("tries", [])) * spec["search_s"] + (
            fulls * spec["duration_s"]) + (spec["search_s"] if e.get("scheduler") else 0)
        parts.append(f"{e['row']} {e['wall_s']:.0f} s ({fixed:g} s of set durations)")
    offline = (record.get("offline") or {}).get("wall_s")
    if offline is not None:
        parts.append(f"offline {offline:.0f} s")
    return f"Wall time of the load phase: {record.get('wall_s', 0):.0f} s" + (
        f": {', '.join(parts)}." if parts else ".")


def section(run_dir: Path) -> list[str]:
    """The report's "Many callers at once" section, or nothing when the run had no load phase."""
    record = read(run_dir)
    if record is None:
        return []
    spec = record["spec"]
    out = ["## Many callers at once", "",
           f"Each path's runner started again with load jobs (docs/runner-contract.md, \"Load job\"), in `load/`: "
           f"N caller threads sharing one loaded model, and N single-caller processes, each calling as fast as it "
           f"can for {spec['closed_s']:g} s; then Poisson arrivals ({spec['server_callers']} caller thread(s)), "
           f"latency from the scheduled arrival, searched for the highest rate with p99 ≤ {spec['bound_ms']:g} ms "
           f"({spec['search_s']:g} s per rate tried, up to {spec.get('search_steps', '?')} rates, then "
           f"{spec['duration_s']:g} s at the rate found, and once more a step lower if that goes over the bound; "
           f"VALID needs "
           f"≥ {spec['min_queries']} queries over the full duration). Every load-phase output was compared with "
           f"its slot's output from the same process's timed pass, and those with the reference. "
           f"Machine: {record['cores']} cores. {wall_line(record)}", ""]
    if not record.get("complete"):
        out += ["**Incomplete:** the load phase was interrupted; what finished is shown.", ""]
    out += ["### Peak rate at the bound", "", peak_table(record), "",
            "### Scaling with callers", "", scaling_table(record), "",
            f"Do 2 callers give ≥ {TWO_CALLERS}× the calls per second of 1?", "", *verdicts(record), ""]
    table = scheduler_table(record)
    if table:
        out += ["### The scheduler's own share", "",
                "Each peak's arrivals again (the same rate, seed and callers, for the search's duration), with every "
                "call replaced by the runtime's no-op stand-in (it hands back the slot's kept output; the loop's "
                "clock reads, waits, latency records and output checks run as they are): its latency from the "
                "scheduled arrival is what the harness adds to each real call's. *share*: that over the path's "
                "latency in the search's run at the same rate (the same arrivals, with the model).", "", table, ""]
    offline = record.get("offline") or {}
    table = offline_table(record)
    if table or offline.get("problem"):
        out += ["### Offline: samples per second with any batch", ""]
        if offline.get("problem"):
            out += [f"Not measured: {offline['problem']}.", ""]
        if table:
            where = (f"in a run of its own ([{offline['folder']}/]({offline['folder']}/report.md), outputs verified "
                     "there)") if offline.get("folder") else "in this run"
            out += [f"Each path's row at each batch size, one caller (the suite's threads), {where}; at the row's "
                    "own batch (¹) its figure from this run's single-call rows, the same job, not run twice: "
                    "samples per second = batch / median call time.", "", table, ""]
    if plot(record, run_dir / PLOT):
        out += [f"![throughput against latency]({PLOT})", ""]
    return out
