"""How each runner ran: runtime, libtorch, compiler flags, JVM arguments, artifacts — read from its results."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# the facts of a result's `extra` that say how a figure was produced, in the order a reader wants them
KEYS = ("compile_flags", "compiler", "jvm_input_arguments", "java_vm_version", "pytorch_java_only",
        "graph_optimizer", "executable", "onnxruntime")


def _text(value: object) -> str:
    text = " ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text.replace("|", "\\|")


def runtime_rows(run_dir: Path) -> list[dict[str, str]]:
    """One row per runner from its first finished repeat."""
    rows = []
    for runner_dir in sorted((run_dir / "raw").iterdir()) if (run_dir / "raw").exists() else []:
        results = sorted(runner_dir.glob("*/result.json"))
        if not results:
            continue
        r = json.loads(results[0].read_text())
        extra = r.get("extra") or {}
        details = "; ".join(f"{k}: {_text(extra[k])}" for k in KEYS if extra.get(k) not in (None, "", []))
        rows.append({
            "runner": runner_dir.name,
            "runtime": str(r.get("runtime", "")),
            "libtorch": f"{r.get('libtorch_version') or '–'} {r.get('libtorch_path') or ''}".strip(),
            "grad mode": str(r.get("grad_mode", "")),
            "details": details or "–",
        })
    return rows


def runtime_table(run_dir: Path) -> str:
    rows = runtime_rows(run_dir)
    if not rows:
        return "(no runner finished)"
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True)
