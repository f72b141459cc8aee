"""The measurement sequence shared by the Python runners (docs/runner-contract.md), so they differ only in the model.

Importing this file does not import torch: the ONNX Runtime runner uses the same sequence with its own
`Backend` and must not load libtorch, or its figure would not be pure ONNX Runtime. Every other runner
gets `TorchBackend`, which imports torch when it is made.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NoReturn, Protocol

import numpy as np


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 1: the harness records the message in the FAILED row."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def read_job() -> dict[str, Any]:
    if len(sys.argv) != 2:
        fail("usage: runner.py JOB.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)


def read_input_array(job: dict[str, Any]) -> np.ndarray:
    """The whole inputs file as a float32 [input_count, sample_size] array (row i is sample i)."""
    n, size = job["input_count"], job["sample_size"]
    data = np.fromfile(job["inputs"], dtype="<f4")
    if data.size != n * size:
        fail(f"{job['inputs']} holds {data.size} floats, expected {n} x {size}: regenerate the inputs")
    return data.reshape(n, size)


def libtorch_path() -> str:
    """The libtorch_cpu actually mapped into this process ("" when none is)."""
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


def _one_line(exc: BaseException) -> str:
    """The exception's type and the first non-empty line of its message (compiler errors run to pages)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"[:300]


class Backend(Protocol):
    """What differs between runtimes: thread settings, the form of a sample, grad mode, outputs, facts."""

    detach: bool  # outputs carry autograd history that must be cut before they are kept

    def setup(self, job: dict[str, Any]) -> None: ...

    def samples(self, data: np.ndarray) -> Any: ...

    def grad(self, mode: str) -> contextlib.AbstractContextManager[Any]: ...

    def outputs(self, outs: list[Any]) -> np.ndarray: ...

    def facts(self, job: dict[str, Any]) -> dict[str, Any]: ...


class TorchBackend:
    """libtorch through the torch package: the setting of every Python runner but ONNX Runtime."""

    detach = True

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def setup(self, job: dict[str, Any]) -> None:
        """Threads first, before any tensor work (inter-op threads can only be set once)."""
        self.torch.set_num_threads(job["threads"])
        self.torch.set_num_interop_threads(job["interop_threads"])

    def samples(self, data: np.ndarray) -> Any:
        return self.torch.from_numpy(data)

    def grad(self, mode: str) -> contextlib.AbstractContextManager[Any]:
        if mode == "inference":
            return self.torch.inference_mode()
        if mode == "no_grad":
            return self.torch.no_grad()
        if mode == "default":
            return contextlib.nullcontext()
        fail(f"unknown grad_mode '{mode}': use default, no_grad or inference")

    def outputs(self, outs: list[Any]) -> np.ndarray:
        return self.torch.stack(outs).numpy()

    def facts(self, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "libtorch_version": self.torch.__version__,
            "libtorch_path": libtorch_path(),
            "threads": self.torch.get_num_threads(),
            "interop_threads": self.torch.get_num_interop_threads(),
            "grad_mode": job["grad_mode"],
        }


def _calls_detached(model: Callable[[Any], Any], xs: Any, outs: list[Any], warm: np.ndarray,
                    timings: np.ndarray, block: int) -> None:
    """Warm-up calls timed one by one, then the timed blocks; each kept output detached from autograd."""
    clock = time.perf_counter_ns
    n = xs.shape[0]
    for i in range(warm.size):
        t0 = clock()
        model(xs[i % n]).detach()
        warm[i] = clock() - t0
    for b in range(timings.size):
        start = b * block
        t0 = clock()
        for i in range(start, start + block):
            outs[i] = model(xs[i]).detach()
        timings[b] = clock() - t0


def _calls(model: Callable[[Any], Any], xs: Any, outs: list[Any], warm: np.ndarray,
           timings: np.ndarray, block: int) -> None:
    """The same loops for a runtime whose outputs are plain arrays (nothing to detach)."""
    clock = time.perf_counter_ns
    n = xs.shape[0]
    for i in range(warm.size):
        t0 = clock()
        model(xs[i % n])
        warm[i] = clock() - t0
    for b in range(timings.size):
        start = b * block
        t0 = clock()
        for i in range(start, start + block):
            outs[i] = model(xs[i])
        timings[b] = clock() - t0


def measure(job: dict[str, Any], load: Callable[[], Callable[[Any], Any]], backend: Backend | None = None,
            extra: dict[str, Any] | None = None) -> None:
    """Load (timed), warm up (each call timed), then the timed loop, one clock read per block.

    `extra` holds the runner's own facts for the result file; `load` may still add to it.
    """
    backend = backend or TorchBackend()
    backend.setup(job)
    xs = backend.samples(read_input_array(job))
    calls, warmup, block = job["calls"], job["warmup_calls"], job["block"]
    clock = time.perf_counter_ns
    t0 = clock()
    try:
        model = load()
    except Exception as exc:  # noqa: BLE001 - any load error becomes the FAILED row's one line
        traceback.print_exc()
        fail(f"loading the model failed: {_one_line(exc)}")
    load_ns = clock() - t0

    outs: list[Any] = [None] * calls
    warm = np.zeros(warmup, dtype="<i8")
    timings = np.zeros(calls // block, dtype="<i8")
    try:
        with backend.grad(job["grad_mode"]):
            (_calls_detached if backend.detach else _calls)(model, xs, outs, warm, timings, block)
    except Exception as exc:  # noqa: BLE001 - e.g. torch.compile compiling on the first call
        traceback.print_exc()
        fail(f"calling the model failed: {_one_line(exc)}")

    backend.outputs(outs).astype("<f4").tofile(job["outputs"])
    timings.tofile(job["timings"])
    warm.tofile(job["warmup_timings"])
    result = {
        "runner": job["runner"],
        "status": "ok",
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
        **backend.facts(job),
        "load_ns": load_ns,
        "first_call_ns": int(warm[0]),
        "calls": calls,
        "warmup_calls": warmup,
        "block": block,
        "timer_overhead_ns": timer_overhead_ns(),
        "extra": {"executable": sys.executable, **(extra or {})},
    }
    tmp = job["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, job["result"])
