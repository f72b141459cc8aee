"""The measurement sequence shared by the Python runners (docs/runner-contract.md), so they differ only in the model."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def fail(message: str) -> None:
    """One line on stderr, exit 1: the harness records the message in the FAILED row."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def read_job() -> dict[str, Any]:
    if len(sys.argv) != 2:
        fail("usage: runner.py JOB.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)


def setup(job: dict[str, Any]) -> None:
    """Threads first, before any tensor work (inter-op threads can only be set once)."""
    torch.set_num_threads(job["threads"])
    torch.set_num_interop_threads(job["interop_threads"])


def grad_context(mode: str) -> contextlib.AbstractContextManager[Any]:
    if mode == "inference":
        return torch.inference_mode()
    if mode == "no_grad":
        return torch.no_grad()
    if mode == "default":
        return contextlib.nullcontext()
    fail(f"unknown grad_mode '{mode}': use default, no_grad or inference")
    raise AssertionError


def read_inputs(job: dict[str, Any]) -> torch.Tensor:
    n, size = job["input_count"], job["sample_size"]
    data = np.fromfile(job["inputs"], dtype="<f4")
    if data.size != n * size:
        fail(f"{job['inputs']} holds {data.size} floats, expected {n} x {size}: regenerate the inputs")
    return torch.from_numpy(data.reshape(n, size))


def libtorch_path() -> str:
    """The libtorch_cpu actually mapped into this process."""
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            if line.rstrip().endswith("libtorch_cpu.so"):
                return line.split()[-1]
    return ""


def timer_overhead_ns() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(1000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    return int(np.median(samples))


def measure(job: dict[str, Any], load: Callable[[], Callable[[torch.Tensor], torch.Tensor]]) -> None:
    """Load (timed), warm up (each call timed), then the timed loop, one clock read per block."""
    setup(job)
    xs = read_inputs(job)
    calls, warmup, block = job["calls"], job["warmup_calls"], job["block"]
    clock = time.perf_counter_ns
    t0 = clock()
    model = load()
    load_ns = clock() - t0

    outs: list[torch.Tensor | None] = [None] * calls
    warm = np.zeros(warmup, dtype="<i8")
    timings = np.zeros(calls // block, dtype="<i8")
    n = xs.shape[0]
    with grad_context(job["grad_mode"]):
        for i in range(warmup):
            t0 = clock()
            model(xs[i % n]).detach()
            warm[i] = clock() - t0
        for b in range(calls // block):
            start = b * block
            t0 = clock()
            for i in range(start, start + block):
                outs[i] = model(xs[i]).detach()
            timings[b] = clock() - t0

    torch.stack(outs).numpy().astype("<f4").tofile(job["outputs"])  # type: ignore[arg-type]
    timings.tofile(job["timings"])
    warm.tofile(job["warmup_timings"])
    result = {
        "runner": job["runner"],
        "status": "ok",
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
        "libtorch_version": torch.__version__,
        "libtorch_path": libtorch_path(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "grad_mode": job["grad_mode"],
        "load_ns": load_ns,
        "first_call_ns": int(warm[0]),
        "calls": calls,
        "warmup_calls": warmup,
        "block": block,
        "timer_overhead_ns": timer_overhead_ns(),
        "extra": {"executable": sys.executable},
    }
    tmp = job["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, job["result"])
