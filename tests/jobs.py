"""One way for every test to write a runner's job file: complete, and valid against docs/schemas/job.schema.json.

Tests that pin the contract write jobs here rather than through harness.run, so a change of the harness
cannot silently change what the runners are held to.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from harness.paths import ROOT

JOB_SCHEMA: dict[str, Any] = json.loads((ROOT / "docs" / "schemas" / "job.schema.json").read_text())
RESULT_SCHEMA: dict[str, Any] = json.loads((ROOT / "docs" / "schemas" / "result.schema.json").read_text())
DROP = object()  # an override value that removes the key from the job


def make_job(d: Path, runner: str, model_dir: Path, inputs: np.ndarray, *, model_file: str = "model.ts.pt",
             kind: str = "mlp", layers: tuple[int, ...] = (), output_shape: tuple[int, ...] = (1,), batch: int = 1,
             calls: int | None = None, warmup: int = 2, warmup_s: float = 0.0, block: int = 1,
             bare_rounds: int | None = None,
             grad_mode: str = "default", options: dict[str, Any] | None = None, threads: int = 1,
             input_shape: tuple[int, ...] | None = None, override: dict[str, Any] | None = None,
             more_inputs: tuple[np.ndarray, ...] = ()) -> Path:
    """A job over `inputs` ([input_count, *sample_shape], float32) written to d/job.json; returns its path.

    `more_inputs`: further input tensors ([input_count, *their sample_shape], any dtype of the contract),
    after `inputs`, whose dtype is kept (then it may be any too): a user model's several inputs, batch 1.
    `override` replaces keys after the job is built and checked, so a test can break one rule on purpose.
    """
    d.mkdir(parents=True, exist_ok=True)
    (d / "artifacts").mkdir(exist_ok=True)
    arrays = (inputs if more_inputs else inputs.astype("<f4"), *more_inputs)
    count, sample_shape = inputs.shape[0], tuple(inputs.shape[1:])
    calls = calls if calls is not None else count // batch
    if input_shape is None:
        input_shape = sample_shape if batch == 1 and kind != "conv_bn_relu" else (batch, *sample_shape)
    blocks = calls // block
    tensors, blob = inputs_layout(arrays, batch, input_shape)
    (d / "inputs.bin").write_bytes(blob)
    if bare_rounds is None:
        bare_rounds = max(r for r in range(1, 5) if blocks % r == 0)
    job: dict[str, Any] = {
        "runner": runner, "model_kind": kind, "model_dir": str(model_dir),
        "torchscript": str(model_dir / "model.ts.pt"), "model_file": str(model_dir / model_file),
        "state_dict": str(model_dir / "model.state.pt"), "weights": str(model_dir / "weights.bin"),
        "layers": list(layers), "sample_shape": list(sample_shape), "output_shape": list(output_shape),
        "inputs": str(d / "inputs.bin"), "input_count": count, "sample_size": math.prod(sample_shape),
        "output_size": math.prod(output_shape), "batch": batch, "input_shape": list(input_shape),
        "input_tensors": tensors,
        "slots": min(calls, count // batch), "calls": calls, "bare_calls": calls, "bare_rounds": bare_rounds,
        "warmup_calls": warmup, "warmup_s": warmup_s, "block": block, "threads": threads, "interop_threads": 1,
        "grad_mode": grad_mode,
        "options": options or {}, "outputs": str(d / "outputs.bin"), "timings": str(d / "timings.bin"),
        "warmup_timings": str(d / "warmup_timings.bin"), "artifacts": str(d / "artifacts"),
        "result": str(d / "result.json"),
    }
    jsonschema.validate(job, JOB_SCHEMA)
    for key, value in (override or {}).items():
        if value is DROP:
            del job[key]
        else:
            job[key] = value
    path = d / "job.json"
    path.write_text(json.dumps(job))
    return path



def inputs_layout(arrays: tuple[np.ndarray, ...], batch: int,
                  first_shape: tuple[int, ...]) -> tuple[list[dict[str, Any]], bytes]:
    """The contract's input_tensors and the inputs file's bytes: tensor after tensor, each 8-byte aligned."""
    tensors, blob = [], b""
    for k, a in enumerate(arrays):
        data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()
        sample = list(a.shape[1:])
        shape = list(first_shape) if k == 0 else ([batch, *sample] if batch > 1 else sample)
        tensors.append({"dtype": DTYPE_NAMES[a.dtype.name], "sample_shape": sample, "shape": shape,
                        "offset": len(blob) + (-len(blob) % 8)})
        blob += b"\0" * (-len(blob) % 8) + data  # padded to 8 before a tensor, never after the last
    return tensors, blob


DTYPE_NAMES = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32", "bool": "bool"}


def minimal_result(runner: str, **changes: Any) -> dict[str, Any]:
    """A result that obeys docs/schemas/result.schema.json, for fake runners: the figures are placeholders."""
    result: dict[str, Any] = {
        "runner": runner, "status": "ok", "runtime": "fake 1", "libtorch_version": None, "libtorch_path": None,
        "threads": 1, "interop_threads": 1, "grad_mode": "n/a", "load_ns": 1, "first_call_ns": 1, "calls": 1,
        "warmup_calls": 1, "warmup_s": 0.0, "warmup_calls_made": 1, "warmup_ns": 1, "block": 1, "batch": 1,
        "timer_overhead_ns": 1, "bare_calls": 0, "bare_rounds": 1,
        "bare_ns": [], "peak_rss_kb": None, "extra": {},
    }
    result.update(changes)
    jsonschema.validate(result, RESULT_SCHEMA)
    return result
