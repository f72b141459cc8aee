"""The measurement sequence shared by the Python runners (docs/runner-contract.md), so they differ only in the model.

Importing this file does not import torch: the ONNX Runtime runner uses the same sequence with its own
`Backend` and must not load libtorch, or its figure would not be pure ONNX Runtime. Every other runner
gets `TorchBackend`, which imports torch when it is made; the job's torch options (channels_last,
qengine, cpu_fuser, dump_graph) live there, so every TorchScript-style runner handles them the same way.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, NoReturn, Protocol

import numpy as np


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 1: the harness records the message in the FAILED row."""
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)
    sys.exit(1)


def _job_error(path: str, message: str) -> NoReturn:
    """The contract's form of a refused job (docs/runner-contract.md, "Job rules"): one line, naming the key."""
    fail(f"job {path}: {message}")


def _strict_validator() -> Any:
    """The schema's validator with integers that are ints only: 8.0 and true are refused, as in C++ and Java."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)


def _schema_message(error: Any) -> str:
    """A schema error as `'KEY' problem`: the innermost property named, as the other runtimes do."""
    keys = [k for k in error.absolute_path if isinstance(k, str)]
    if error.validator == "required":
        return f"{error.message.split(' is a required')[0]} is missing (docs/runner-contract.md): is the harness older?"
    if error.validator == "additionalProperties":
        unexpected = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"in '{keys[-1]}' " if keys else ""
        return f"'{unexpected[0]}' is not a key of the contract {where}(docs/runner-contract.md)"
    return f"'{keys[-1]}': {error.message}" if keys else error.message


def read_job(supports: Iterable[str] = ()) -> dict[str, Any]:
    """The job file, checked against job.schema.json (copied beside this file) and the contract's nine rules.

    `supports` names the options this runner accepts (any other fails). Called before torch is imported, so
    a bad job costs a fraction of a second rather than a torch import.
    """
    if len(sys.argv) != 2:
        fail("usage: runner.py JOB.json")
    path = sys.argv[1]
    try:
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
    except OSError as exc:
        _job_error(path, f"cannot be read ({exc.strerror}): check the path passed as the only argument")
    except json.JSONDecodeError as exc:
        _job_error(path, f"is not valid JSON: {exc}")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "job.schema.json"), encoding="utf-8") as f:
        schema = json.load(f)
    validator = _strict_validator()(schema)
    errors = sorted(validator.iter_errors(job), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        _job_error(path, _schema_message(errors[0]))
    check_job(job, supports)
    return job


_MLP_KINDS = ("mlp", "mlp_branch")


def check_job(job: dict[str, Any], supported: Iterable[str]) -> dict[str, Any]:
    """The nine cross-field rules, in the contract's order, before anything is loaded; returns the options.

    A mismatch caught here would otherwise only show as wrong outputs or a crash in the timed loop.
    """
    path = sys.argv[1]
    for n, key in ((1, "sample"), (2, "output")):
        shape, size = job[f"{key}_shape"], job[f"{key}_size"]
        if math.prod(shape) != size:
            _job_error(path, f"'{key}_size' is {size} but the product of {key}_shape {shape} is {math.prod(shape)}"
                             f" (rule {n})")
    layers = job["layers"]
    if job["model_kind"] in _MLP_KINDS and (
        len(layers) < 2 or layers[0] != job["sample_size"] or layers[-1] != job["output_size"]
    ):
        _job_error(path, f"'layers' {layers} must have at least 2 widths, the first sample_size ({job['sample_size']})"
                         f" and the last output_size ({job['output_size']}) (rule 3)")
    batch, calls, count, block = job["batch"], job["calls"], job["input_count"], job["block"]
    if math.prod(job["input_shape"]) != batch * job["sample_size"]:
        _job_error(path, f"'input_shape' {job['input_shape']} holds {math.prod(job['input_shape'])} floats, not "
                         f"batch x sample_size = {batch} x {job['sample_size']} (rule 4)")
    if count < batch:
        _job_error(path, f"'input_count' {count} is less than one batch of {batch}: generate more inputs (rule 5)")
    if job["slots"] != min(calls, count // batch):
        _job_error(path, f"'slots' is {job['slots']}, expected min(calls, input_count // batch) = "
                         f"{min(calls, count // batch)} (rule 6)")
    if calls % block:
        _job_error(path, f"'block' {block} does not divide calls ({calls}) (rule 7)")
    rounds, bare = job["bare_rounds"], job["bare_calls"]
    if (calls // block) % rounds or bare % rounds:
        _job_error(path, f"'bare_rounds' {rounds} must divide both calls / block ({calls // block}) and bare_calls "
                         f"({bare}) (rule 8)")
    supported = tuple(supported)
    options = job["options"]
    for key in options:
        if key not in supported:
            _job_error(path, f"option '{key}' is not supported by {job['runner']}: supported: "
                             f"{', '.join(supported) or 'none'} (rule 9)")
    if options.get("channels_last") and len(job["input_shape"]) != 4:
        _job_error(path, f"option 'channels_last' needs a 4-D input (N, C, H, W), the job's input_shape is "
                         f"{job['input_shape']} (rule 9)")
    _check_tensors(job, path)
    return options


DTYPE_BYTES = {"float32": 4, "float64": 8, "int64": 8, "int32": 4, "bool": 1}  # docs/runner-contract.md


def _check_tensors(job: dict[str, Any], path: str) -> None:
    """Rule 10: the input tensors agree with sample_shape and input_shape, one batch each, laid out in order."""
    tensors = job["input_tensors"]
    first = tensors[0]
    if first["sample_shape"] != job["sample_shape"] or first["shape"] != job["input_shape"]:
        _job_error(path, f"'input_tensors'[0] has sample_shape {first['sample_shape']} and shape {first['shape']}, "
                         f"expected the job's sample_shape {job['sample_shape']} and input_shape "
                         f"{job['input_shape']} (rule 10)")
    end = 0
    for k, t in enumerate(tensors):
        sample = math.prod(t["sample_shape"])
        if math.prod(t["shape"]) != job["batch"] * sample:
            _job_error(path, f"'input_tensors'[{k}] shape {t['shape']} does not hold batch x its sample_shape = "
                             f"{job['batch']} x {t['sample_shape']} (rule 10)")
        start = end + (-end % 8) if k else 0
        if t["offset"] != start:
            _job_error(path, f"'input_tensors'[{k}] offset is {t['offset']}, expected {start} (rule 10)")
        end = start + job["input_count"] * sample * DTYPE_BYTES[t["dtype"]]


NUMPY_DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4", "bool": "|b1"}


def read_input_arrays(job: dict[str, Any]) -> list[np.ndarray]:
    """Each input tensor's samples as an [input_count, sample elements] array of its dtype (row i is sample i).

    The file must end where the last tensor does (docs/runner-contract.md, rule 10).
    """
    n = job["input_count"]
    tensors = job["input_tensors"]
    last = tensors[-1]
    expected = last["offset"] + n * math.prod(last["sample_shape"]) * DTYPE_BYTES[last["dtype"]]
    size = os.path.getsize(job["inputs"])
    if size != expected:
        fail(f"{job['inputs']} has {size} bytes, the job's input_tensors need {expected}: regenerate the inputs")
    blob = np.fromfile(job["inputs"], dtype=np.uint8)
    return [blob[t["offset"]:t["offset"] + n * math.prod(t["sample_shape"]) * DTYPE_BYTES[t["dtype"]]]
            .view(NUMPY_DTYPES[t["dtype"]]).reshape(n, math.prod(t["sample_shape"])) for t in tensors]


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


def check_output_size(slot: int, size: int, job: dict[str, Any]) -> None:
    expected = job["batch"] * job["output_size"]
    if size != expected:
        fail(f"the output of batch {slot} has {size} values, expected batch x output_size = "
             f"{job['batch']} x {job['output_size']} = {expected}")


def peak_rss_kb() -> int | None:
    """This process's own peak resident memory (VmHWM), read by itself: no race with a short life."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Keeper(Protocol):
    """The runner's own output buffer: every call's output copied into its slot, row-major (see Keeping).

    `returns` says whether `take` needs the calls' returned values: False for a runner whose call writes its
    output into its slot itself, whose timed loop then holds nothing (the bare loop's shape, clock reads aside).
    """

    returns: bool

    def take(self, first: int, ys: list[Any]) -> None: ...

    def array(self) -> np.ndarray: ...


class Backend(Protocol):
    """What differs between runtimes: settings, the form of a batch, grad mode, outputs, facts."""

    def setup(self, job: dict[str, Any], options: dict[str, Any], extra: dict[str, Any]) -> None: ...

    def samples(self, data: list[np.ndarray], job: dict[str, Any]) -> list[Any]: ...

    def prepare(self, model: Callable[[Any], Any], options: dict[str, Any]) -> Callable[[Any], Any]: ...

    def grad(self, mode: str) -> contextlib.AbstractContextManager[Any]: ...

    def finish(self, job: dict[str, Any], options: dict[str, Any], extra: dict[str, Any]) -> None: ...

    def keeper(self, job: dict[str, Any]) -> Keeper: ...

    def facts(self, job: dict[str, Any]) -> dict[str, Any]: ...


# node kinds always listed in the graph summary, 0 when absent, so runs compare at a glance
GRAPH_KINDS = ("prim::TensorExprGroup", "prim::FusionGroup", "prim::DifferentiableGraph", "prim::Loop")


def graph_node_counts(graph: Any) -> dict[str, int]:
    """Node kinds of a TorchScript graph, counted through nested blocks and fusion/autodiff subgraphs."""
    counts: Counter[str] = Counter(dict.fromkeys(GRAPH_KINDS, 0))

    def walk(block: Any) -> None:
        for node in block.nodes():
            counts[node.kind()] += 1
            for inner in node.blocks():
                walk(inner)
            for name in node.attributeNames():
                if node.kindOf(name) == "g":  # prim::TensorExprGroup, prim::DifferentiableGraph: 'Subgraph'
                    walk(node.g(name))

    walk(graph)
    return dict(sorted(counts.items()))


class TorchBackend:
    """libtorch through the torch package: the setting of every Python runner but ONNX Runtime."""

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def setup(self, job: dict[str, Any], options: dict[str, Any], extra: dict[str, Any]) -> None:
        """Threads first, before any tensor work (inter-op threads can only be set once); then what the load needs."""
        torch = self.torch
        torch.set_num_threads(job["threads"])
        torch.set_num_interop_threads(job["interop_threads"])
        if "qengine" in options:
            engines = torch.backends.quantized.supported_engines
            if options["qengine"] not in engines:
                fail(f"option qengine '{options['qengine']}' is not supported by this torch build: "
                     f"torch.backends.quantized.supported_engines is {engines}")
            torch.backends.quantized.engine = options["qengine"]
            extra["quantized_engine"] = torch.backends.quantized.engine
        if options.get("cpu_fuser"):
            torch._C._jit_override_can_fuse_on_cpu(True)
            if torch._C._llvm_enabled():
                extra["cpu_fuser"] = "on: NNC fusion groups compiled by LLVM"
            else:
                # Without LLVM the first optimized call fails with "LLVM Backend not found"; NNC's own IR
                # interpreter still runs its fusion groups, so the row measures what this build can fuse.
                torch._C._jit_set_te_must_use_llvm_cpu(False)
                extra["cpu_fuser"] = ("on, but this torch build has no LLVM: NNC fusion groups run on its IR "
                                      "interpreter (te_must_use_llvm_cpu off), not as compiled code")

    def samples(self, data: list[np.ndarray], job: dict[str, Any]) -> list[Any]:
        """Per slot one tensor (or a tuple, one per input), each a view of the inputs shaped exactly as the
        call's, all made before timing."""
        b, per_slot = job["batch"], []
        for t, a in zip(job["input_tensors"], data, strict=True):
            x, shape = self.torch.from_numpy(a), t["shape"]
            if job["options"].get("batch_dim"):  # a model exported with a batch dimension, even for one sample
                shape = [b, *t["sample_shape"]]
            per_slot.append([x[s * b:(s + 1) * b].view(shape) for s in range(job["slots"])])
        return per_slot[0] if len(per_slot) == 1 else list(zip(*per_slot, strict=True))

    def prepare(self, model: Callable[[Any], Any], options: dict[str, Any]) -> Callable[[Any], Any]:
        if not options.get("channels_last"):
            return model
        channels_last = self.torch.channels_last

        def call(x: Any) -> Any:
            return model(x.contiguous(memory_format=channels_last))  # the conversion is part of each call

        return call

    def grad(self, mode: str) -> contextlib.AbstractContextManager[Any]:
        if mode == "inference":
            return self.torch.inference_mode()
        if mode == "no_grad":
            return self.torch.no_grad()
        if mode == "default":
            return contextlib.nullcontext()
        fail(f"unknown grad_mode '{mode}': use default, no_grad or inference")

    def finish(self, job: dict[str, Any], options: dict[str, Any], extra: dict[str, Any]) -> None:
        """Right after the timed loop, while the model's forward is still the last graph this thread ran."""
        if not options.get("dump_graph"):
            return
        graph = self.torch.jit.last_executed_optimized_graph()
        path = os.path.join(job["artifacts"], "graph.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write(str(graph))
        extra["graph"] = path
        extra["graph_nodes"] = graph_node_counts(graph)

    def keeper(self, job: dict[str, Any]) -> TensorKeeper:
        return TensorKeeper(self.torch, job)

    def facts(self, job: dict[str, Any]) -> dict[str, Any]:
        return {
            "libtorch_version": self.torch.__version__,
            "libtorch_path": libtorch_path(),
            "threads": self.torch.get_num_threads(),
            "interop_threads": self.torch.get_num_interop_threads(),
            "grad_mode": job["grad_mode"],
        }


class Keeping:
    """Outputs held as they come and copied into the runner's buffer CHUNK calls at a time.

    Between two calls the timed loop runs only a list append: anything more, even outside the clock reads,
    shows in the next call (it pushes the model's code and data out of the caches). Measured beside the bare
    pass on MyNN: copying each output right after its call cost 15 % per call for python-eager; holding 64
    and copying them one by one cost 3-6 % for python-eager and python-torchscript; holding 64 and copying
    them in one operation (`copy_run`), 1-2 %, as close to the bare loop as a loop that keeps every output can
    be (dropping them costs 1-1.5 % as well). At most CHUNK + block outputs are alive at once.
    A runner whose outputs pin more memory holds fewer (measure's `chunk`): python-eager's outputs each
    keep their autograd graph, and 64 of them cost it 2-8 % (16: -1.4 to +0.2 %), while python-torchscript
    did better with 64 (+0.7 to +1.6 %) than with 16 (+2.5 to +3.1 %).
    """

    CHUNK = 64  # the default number of calls between two copies: their outputs are held until then
    returns = True  # take copies the returned outputs

    def __init__(self, slots: int) -> None:
        self.slots = slots

    def take(self, first: int, ys: list[Any]) -> None:
        """The outputs of calls first, first + 1, ...: call i's goes to slot i % slots."""
        start = first % self.slots
        if start + len(ys) <= self.slots and self.copy_run(start, ys):
            return
        for k, y in enumerate(ys):
            self.copy((first + k) % self.slots, y)

    def copy_run(self, start: int, ys: list[Any]) -> bool:
        """Copy outputs into slots start, start + 1, ... in one operation where they allow it (False if not)."""
        return False

    def copy(self, slot: int, y: Any) -> None:
        raise NotImplementedError

    def array(self) -> np.ndarray:
        raise NotImplementedError


class TensorKeeper(Keeping):
    """One float32 buffer for all slots, made before timing; each output copied into its slot's view.

    Copying (rather than keeping every output tensor alive) keeps the process's memory as in a bare loop:
    no ring of `slots` live tensors with their autograd graphs. `.reshape(-1)` gives the logical (NCHW)
    order of a channels-last output.
    """

    def __init__(self, torch: Any, job: dict[str, Any]) -> None:
        super().__init__(job["slots"])
        self.torch, self.job = torch, job
        self.per_slot = job["batch"] * job["output_size"]
        self.flat = torch.zeros(job["slots"] * self.per_slot)

    def copy_run(self, start: int, ys: list[Any]) -> bool:
        """One torch.cat into the slots' span when every output is one float32 tensor of the right size."""
        torch, per = self.torch, self.per_slot
        for y in ys:
            if not isinstance(y, torch.Tensor) or y.dtype != torch.float32 or y.numel() != per:
                return False
        with torch.no_grad():  # out= refuses tensors that require grad (grad_mode "default")
            torch.cat([y.reshape(-1) for y in ys], out=self.flat[start * per:(start + len(ys)) * per])
        return True

    def copy(self, slot: int, y: Any) -> None:
        if not isinstance(y, self.torch.Tensor):  # several outputs: flattened in pytree order, joined
            parts = [t.detach().reshape(-1) for t in flatten(y, self.torch.Tensor)]
            y = self.torch.cat([p.to(self.torch.float32) for p in parts]) if parts else self.torch.zeros(0)
        check_output_size(slot, y.numel(), self.job)
        per = self.per_slot
        self.flat[slot * per:(slot + 1) * per].copy_(y.detach().reshape(-1))  # converts int or bool to float32

    def array(self) -> np.ndarray:
        return self.flat.numpy()


def flatten(y: Any, leaf: type) -> list[Any]:
    """A call's result in pytree order (docs/runner-contract.md): a leaf, tuple and list items, dict values."""
    if isinstance(y, leaf):
        return [y]
    if isinstance(y, (tuple, list)):
        return [t for item in y for t in flatten(item, leaf)]
    if isinstance(y, dict):
        return [t for item in y.values() for t in flatten(item, leaf)]
    fail(f"the model returned {type(y).__name__}: a runner keeps tensors, or tuples, lists and dicts of them")


def spread(model: Callable[..., Any]) -> Callable[[Any], Any]:
    """A model of several inputs called with one slot's tuple: model(*xs)."""
    return lambda xs: model(*xs)


def _warm_up(model: Callable[[Any], Any], xs: list[Any], warm: list[int], seconds: float) -> tuple[int, int]:
    """The warm-up: len(warm) calls each timed alone, then calls until `seconds` have passed since it began
    (a count alone is over in a fraction of a ms on a fast path); outputs dropped. Returns its calls and its ns."""
    clock = time.perf_counter_ns
    slots = len(xs)
    start = clock()
    for w in range(len(warm)):
        x = xs[w % slots]
        t0 = clock()
        model(x)
        warm[w] = clock() - t0
    w, deadline = len(warm), start + int(seconds * 1e9)
    while clock() < deadline:
        model(xs[w % slots])
        w += 1
    return w, clock() - start


def _timed(model: Callable[[Any], Any], xs: list[Any], keeper: Keeper, timings: list[int], block: int,
           blocks: range, chunk: int = Keeping.CHUNK) -> None:
    """Timed blocks `blocks`: call i uses batch i % slots; its output goes to slot i % slots.

    In runs of about `chunk` calls: their inputs picked before the run, their outputs held in a list and handed
    to the keeper after it. With one call per block (the default) the two clock reads bracket the call alone;
    a larger block's calls are one list comprehension over its inputs, the bare loop's own shape.
    """
    if not keeper.returns:  # the calls wrote their slots' rows: nothing to hold or hand over
        _timed_unkept(model, xs, timings, block, blocks)
        return
    clock = time.perf_counter_ns
    slots = len(xs)
    take, per_run = keeper.take, max(1, chunk // block)
    for r0 in range(blocks.start, blocks.stop, per_run):
        r1 = min(r0 + per_run, blocks.stop)
        ys: list[Any] = []
        if block == 1:
            append, i = ys.append, r0
            for x in [xs[c % slots] for c in range(r0, r1)]:
                t0 = clock()
                y = model(x)
                t1 = clock()
                timings[i] = t1 - t0
                append(y)
                i += 1
        else:
            for b in range(r0, r1):
                inputs = [xs[c % slots] for c in range(b * block, (b + 1) * block)]
                t0 = clock()
                out = [model(x) for x in inputs]
                timings[b] = clock() - t0
                ys += out
        take(r0 * block, ys)


def _timed_unkept(model: Callable[[Any], Any], xs: list[Any], timings: list[int], block: int, blocks: range) -> None:
    """_timed for a call that writes its output into its slot itself: nothing to hold, so a block's calls are the
    bare loop's own `for x in inputs: y = model(x)` (a list comprehension's appends cost python-aoti-minimal
    ~20 ns of its ~0.1 µs a call, 24 % over its bare pass)."""
    clock = time.perf_counter_ns
    slots = len(xs)
    y = None
    for b in blocks:
        inputs = [xs[c % slots] for c in range(b * block, (b + 1) * block)]
        t0 = clock()
        for x in inputs:
            y = model(x)
        timings[b] = clock() - t0
    del y


def _bare(model: Callable[[Any], Any], xs: list[Any], calls: range) -> int:
    """The seed's loop (`for x in X: model(x)`) over bare calls `calls`, one clock read around all of them.

    Only the last output stays alive; the harness compares this mean with the timed loop's to measure
    what its own bookkeeping costs.
    """
    clock = time.perf_counter_ns
    slots = len(xs)
    order = [xs[i % slots] for i in calls]  # made before the clock starts
    y = None
    t0 = clock()
    for x in order:
        y = model(x)
    elapsed = clock() - t0
    del y
    return elapsed


def _timed_and_bare(model: Callable[[Any], Any], xs: list[Any], keeper: Keeper, timings: list[int],
                    job: dict[str, Any], chunk: int) -> list[int]:
    """The timed blocks in `bare_rounds` equal runs, each followed by its share of the bare pass.

    Alternating keeps both under the same machine state: a VM can change speed within one process.
    """
    rounds, block, bare_calls = job["bare_rounds"], job["block"], job["bare_calls"]
    per_round, bare_per_round = len(timings) // rounds, bare_calls // rounds
    bare_ns = []
    for r in range(rounds):
        _timed(model, xs, keeper, timings, block, range(r * per_round, (r + 1) * per_round), chunk)
        if bare_calls:
            bare_ns.append(_bare(model, xs, range(r * bare_per_round, (r + 1) * bare_per_round)))
    return bare_ns


def measure(job: dict[str, Any], load: Callable[[], Callable[[Any], Any]], backend: Backend | None = None,
            extra: dict[str, Any] | None = None, chunk: int = Keeping.CHUNK,
            cleanup: Callable[[], None] | None = None) -> NoReturn:
    """Load (timed), warm up (calls timed one by one, then for warmup_s), the timed loop (one clock read per block),
    the bare pass; then the process leaves (leave()).

    `job` is read_job's, already checked; `extra` holds the runner's own facts for the result file, and
    `load` may still add to it. `chunk`: the calls whose outputs are held before they are copied (Keeping).
    `cleanup` runs after the result is written, before the process leaves.
    """
    options = job["options"]
    extra = extra if extra is not None else {}  # the runner's own dict: its load() may add to it
    extra["executable"] = sys.executable
    backend = backend or TorchBackend()
    backend.setup(job, options, extra)
    slots, batch = job["slots"], job["batch"]
    xs = backend.samples([a[: slots * batch] for a in read_input_arrays(job)], job)
    calls, warmup, block, bare_calls = job["calls"], job["warmup_calls"], job["block"], job["bare_calls"]
    keeper = backend.keeper(job)
    clock = time.perf_counter_ns
    t0 = clock()
    try:
        model = load()
    except Exception as exc:  # noqa: BLE001 - any load error becomes the FAILED row's one line
        traceback.print_exc()
        fail(f"loading the model failed: {_one_line(exc)}")
    load_ns = clock() - t0
    model = backend.prepare(model if len(job["input_tensors"]) == 1 else spread(model), options)

    warm = [0] * warmup
    timings = [0] * (calls // block)
    load_result = None
    try:
        with backend.grad(job["grad_mode"]):
            warm_calls, warm_ns = _warm_up(model, xs, warm, job["warmup_s"])
            if "load" in job:  # the load job: the timed loop fills the slots once, then the callers run
                bare_ns = []
                _timed(model, xs, keeper, timings, block, range(calls // block), chunk)
                load_result = run_load(job, model, xs, keeper, backend)
            else:
                bare_ns = _timed_and_bare(model, xs, keeper, timings, job, chunk)
    except Exception as exc:  # noqa: BLE001 - e.g. torch.compile compiling on the first call
        traceback.print_exc()
        fail(f"calling the model failed: {_one_line(exc)}")
    backend.finish(job, options, extra)
    peak = peak_rss_kb()

    keeper.array().astype("<f4").tofile(job["outputs"])
    np.array(timings, dtype="<i8").tofile(job["timings"])
    np.array(warm, dtype="<i8").tofile(job["warmup_timings"])
    result = {
        "runner": job["runner"],
        "status": "ok",
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
        **backend.facts(job),
        "load_ns": load_ns,
        "first_call_ns": warm[0],
        "calls": calls,
        "warmup_calls": warmup,
        "warmup_s": job["warmup_s"],
        "warmup_calls_made": warm_calls,
        "warmup_ns": warm_ns,
        "block": block,
        "batch": batch,
        "timer_overhead_ns": timer_overhead_ns(),
        "bare_calls": bare_calls,
        "bare_rounds": job["bare_rounds"],
        "bare_ns": bare_ns,
        "peak_rss_kb": peak,
        "extra": extra,
    }
    if load_result is not None:
        result["load"] = load_result
    tmp = job["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, job["result"])
    if cleanup is not None:
        cleanup()
    leave()


def leave() -> NoReturn:
    """Exit 0 at once, every file written and closed: the interpreter's teardown of torch's modules measures nothing
    and took 0.4 s of CPU a process here (0.7-1.7 s with torch._inductor loaded, on a busy machine)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


# ---- the load job (docs/runner-contract.md, "Load job"): many callers of one loaded model ----

LOAD_CHECK = 64  # outputs a caller holds before comparing them, in one operation, with the slots' kept outputs


class _Caller:
    """One caller thread's state: its latencies, and its outputs checked against the timed pass's."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.latencies: list[int] = []
        self.checked = 0
        self.mismatches = 0
        self.issued = 0
        self.unissued = 0
        self.error: BaseException | None = None


def _kept(torch: Any, keeper: Keeper, job: dict[str, Any]) -> Any:
    """The slots' outputs of the timed pass as one [slots, batch x output_size] float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(keeper.array())).view(job["slots"], job["batch"] * job["output_size"])


def _checker(torch: Any, kept: Any) -> Callable[[list[Any], list[int]], int]:
    """A function comparing held outputs with `kept` (_kept), the outputs of their slots; it returns the mismatches.

    The slots were filled by the timed pass of the same process (and the harness verifies those against the
    reference), so an output equal to its slot's is verified too. Equality is exact: the same model on the
    same input in the same process gives the same floats.
    """
    per = kept.shape[1]
    leaf = torch.Tensor

    def flat(y: Any) -> Any:
        if isinstance(y, leaf) and y.dtype == torch.float32 and y.numel() == per:
            return y.detach().reshape(-1)
        parts = [t.detach().reshape(-1).to(torch.float32) for t in flatten(y, leaf)]
        return torch.cat(parts) if parts else torch.zeros(0)

    def check(ys: list[Any], slots: list[int]) -> int:
        with torch.no_grad():
            got = torch.cat([flat(y) for y in ys])
            if got.numel() != len(ys) * per:
                return len(ys)
            got = got.view(len(ys), per)
            want = kept[slots]
            if torch.equal(got, want):
                return 0
            return int((got != want).any(dim=1).sum())

    return check


def _noop_call(kept_output: Any) -> Any:
    """The no-op stand-in for a call: the callers pass it their slot's kept output in place of the slot's input."""
    return kept_output


def _wait_for_go(load: dict[str, Any]) -> None:
    """Several processes start their callers together: each says it is ready, then waits for the go file."""
    if "ready" in load:
        with open(load["ready"], "w", encoding="utf-8") as f:
            f.write("ready\n")
    if "go" not in load:
        return
    give_up = time.monotonic() + 600
    while not os.path.exists(load["go"]):
        if time.monotonic() > give_up:
            fail(f"load: no go file {load['go']} after 600 s: the harness that started this process is gone")
        time.sleep(0.001)


def _closed(model: Callable[[Any], Any], xs: list[Any], me: _Caller, check: Callable[[list[Any], list[int]], int],
            deadline: int, first: int) -> None:
    """Call as fast as possible until the deadline; call k of this caller uses slot (first + k) % slots."""
    clock = time.perf_counter_ns
    slots = len(xs)
    lat = me.latencies
    ys: list[Any] = []
    used: list[int] = []
    s = first % slots
    while True:
        x = xs[s]
        t0 = clock()
        y = model(x)
        t1 = clock()
        lat.append(t1 - t0)
        ys.append(y)
        used.append(s)
        s = s + 1 if s + 1 < slots else 0
        if len(ys) == LOAD_CHECK or t1 >= deadline:
            me.mismatches += check(ys, used)
            me.checked += len(ys)
            ys, used = [], []
            if t1 >= deadline:
                break
    me.issued = len(lat)


SPIN_NS = 50_000_000  # as the C++ and Java runtimes: sleep until this long before an arrival, then spin to it


def _wait_until(due: int, now: int, alone: bool) -> None:
    """On a VM whose cores go idle a sleep ends up to ~14 ms late (measured here: with 200 µs of spin, 20 % of
    Poisson queries at 4,700/s were more than 100 µs late), which would count as the model's latency: sleep only
    for waits longer than SPIN_NS, then spin.

    A lone caller spins on the clock; with other caller threads the spin yields the core (os.sched_yield releases
    the GIL, ~2 µs a turn) so they keep calling meanwhile. Not time.sleep(0): here it sleeps ~90 µs a turn.
    """
    if due - now > SPIN_NS:
        time.sleep((due - now - SPIN_NS) / 1e9)
    clock = time.perf_counter_ns
    if alone:
        while clock() < due:
            pass
    else:
        while clock() < due:
            os.sched_yield()


def _poisson(model: Callable[[Any], Any], xs: list[Any], me: _Caller, check: Callable[[list[Any], list[int]], int],
             start: int, deadline: int, rate: float, seed: int, alone: bool) -> None:
    """Arrivals with exponential gaps at `rate` per second (this caller's share), each waited for, then called.

    The latency runs from the scheduled arrival to the completion, so time spent behind schedule counts. No
    query is issued after the deadline: those scheduled before it but not issued are counted (unissued), and
    their number is drawn, not enumerated (by memorylessness, Poisson of the rate times the time left), so a
    rate far above capacity ends on time.
    """
    clock = time.perf_counter_ns
    slots = len(xs)
    rng = np.random.default_rng(seed)
    lat = me.latencies
    ys: list[Any] = []
    used: list[int] = []
    mean_gap_ns = 1e9 / rate
    t = float(start)
    k = 0
    while True:
        gaps = rng.exponential(mean_gap_ns, 4096)
        arrivals = (t + np.cumsum(gaps)).astype(np.int64).tolist()
        t = float(arrivals[-1])
        stop = False
        for due in arrivals:
            if due >= deadline:
                stop = True
                break
            now = clock()
            if now >= deadline:  # behind schedule at the end: the rest are never issued
                me.unissued += 1 + int(rng.poisson((deadline - due) / mean_gap_ns))
                stop = True
                break
            if due > now:
                _wait_until(due, now, alone)
            s = (me.index + k * 7919) % slots
            y = model(xs[s])
            lat.append(clock() - due)
            ys.append(y)
            used.append(s)
            k += 1
            if len(ys) == LOAD_CHECK:
                me.mismatches += check(ys, used)
                me.checked += len(ys)
                ys, used = [], []
        if stop:
            break
    if ys:
        me.mismatches += check(ys, used)
        me.checked += len(ys)
    me.issued = len(lat)


def run_load(job: dict[str, Any], model: Callable[[Any], Any], xs: list[Any], keeper: Keeper,
             backend: Backend) -> dict[str, Any]:
    """N caller threads sharing the one loaded model, for the job's duration; writes their latencies.

    Every caller thread enters the job's grad mode itself (it is thread-local in torch). A Python caller holds
    the GIL except inside the call's C++ code, so threads scale only as far as the model releases it.
    """
    import threading

    load = job["load"]
    n, mode = load["callers"], load["mode"]
    if mode == "poisson" and not load.get("rate"):
        _job_error(sys.argv[1], "'load' mode poisson needs a 'rate' above 0")
    torch = getattr(backend, "torch", None)
    if torch is None:
        fail("a load job needs the torch backend: this runner's runtime does not implement it")
    kept = _kept(torch, keeper, job)
    check = _checker(torch, kept)
    # noop: the same loops, over the slots' kept outputs (a list, indexed by slot as xs is) with a call that hands
    # its argument back, so what a caller measures is its loop alone, and every output checked equals its slot's
    noop = bool(load.get("noop", False))
    call, inputs = (_noop_call, list(kept.unbind(0))) if noop else (model, xs)
    callers = [_Caller(c) for c in range(n)]
    duration_ns = int(load["duration_s"] * 1e9)
    _wait_for_go(load)
    barrier = threading.Barrier(n + 1)
    times: dict[str, int] = {}

    def body(me: _Caller) -> None:
        try:
            with backend.grad(job["grad_mode"]):
                barrier.wait()
                start, deadline = times["start"], times["start"] + duration_ns
                if mode == "closed":
                    _closed(call, inputs, me, check, deadline, me.index * max(1, len(xs) // n))
                else:
                    _poisson(call, inputs, me, check, start, deadline, load["rate"] / n, load["seed"] + me.index,
                             n == 1)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread, which fails the job
            me.error = exc

    threads = [threading.Thread(target=body, args=(me,), name=f"caller-{me.index}") for me in callers]
    for th in threads:
        th.start()
    times["start"] = time.perf_counter_ns() + 1_000_000  # 1 ms: every caller is past the barrier by then
    barrier.wait()
    for th in threads:
        th.join()
    elapsed = time.perf_counter_ns() - times["start"]
    for me in callers:
        if me.error is not None:
            raise me.error
    np.array([v for me in callers for v in me.latencies], dtype="<i8").tofile(load["latencies"])
    return {
        "mode": mode,
        "callers": n,
        "counts": [len(me.latencies) for me in callers],
        "elapsed_ns": elapsed,
        "issued": sum(me.issued for me in callers),
        "unissued": sum(me.unissued for me in callers),
        "checked": sum(me.checked for me in callers),
        "mismatches": sum(me.mismatches for me in callers),
        "shared_model": True,
        "noop": noop,
        "note": "Python threads share the one loaded model; each holds the GIL outside the call's C++ code",
    }
