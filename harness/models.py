"""Build the suite's model from its spec, train it (seeded), and export every form a runner loads.

Exports, all from the same weights: the traced TorchScript file (as in the seed), the state dict
(Python eager) and, for MLP kinds, a raw float32 file (C++ API and the raw floor). Cached by a hash of the spec.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_json
from harness.model_spec import ModelSpec
from harness.render import render_model_module
from harness.suite import InputSpec


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one trained model's exports, plus what training reported."""

    dir: Path
    torchscript: Path
    state_dict: Path
    weights: Path  # written for MLP kinds only
    meta: Path
    source: Path | None = None  # a user's model: the file every export is made from (harness/user_model.py)


def target(name: str, x: torch.Tensor, out_features: int) -> torch.Tensor:
    """The function the model learns (BRIEF 000: f(x1, x2) = |x1| + x2), one column per output."""
    if name == "abs_x1_plus_x2":
        y = x[:, 0].abs() + x[:, 1]
        return y.unsqueeze(1).expand(-1, out_features)
    raise ValueError(f"unknown target {name}")


def load_net_class(model: ModelSpec, where: Path, columns: bool = False) -> type[torch.nn.Module]:
    """Import the rendered model.py: training uses the very class the eager runner uses.

    `columns`: NetColumns instead, the same layers and weights computed with samples as columns.
    """
    path = render_model_module(model, where, columns)
    spec = importlib.util.spec_from_file_location(f"model_{where.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.NetColumns if columns else module.Net


def raw_weights(net: torch.nn.Module) -> np.ndarray:
    """Per Linear in order: weight [out, in] row-major, then bias (docs/runner-contract.md)."""
    parts = []
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear):
            parts += [layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy().ravel()]
    return np.concatenate(parts).astype("<f4")


def _train(net: torch.nn.Module, model: ModelSpec, inputs: InputSpec) -> dict[str, float]:
    """The seed's training loop (seeded batches of the suite's input range)."""
    gen = torch.Generator().manual_seed(model.training.seed)
    opt = torch.optim.SGD(net.parameters(), lr=model.training.learning_rate)
    t0 = time.perf_counter()
    loss = torch.tensor(float("nan"))
    for _ in range(model.training.steps):
        x = torch.empty(model.training.batch_size, model.layers[0]).uniform_(inputs.low, inputs.high, generator=gen)
        loss = torch.nn.functional.mse_loss(net(x), target(model.target, x, model.layers[-1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"final_loss": loss.item(), "train_seconds": round(time.perf_counter() - t0, 3)}


def _init_batch_norm(net: torch.nn.Module, seed: int) -> None:
    """Seeded statistics and affine terms far from the defaults, so batch norm is not the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in net.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                c = bn.num_features
                bn.running_mean.copy_(torch.empty(c).uniform_(-0.5, 0.5, generator=gen))
                bn.running_var.copy_(torch.empty(c).uniform_(0.5, 2.0, generator=gen))
                bn.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=gen))
                bn.bias.copy_(torch.empty(c).uniform_(-0.5, 0.5, generator=gen))


def trace_example(model: ModelSpec) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Ones: sum > 0, so a trace of mlp_branch records its `return y` branch. A user's model: its first inputs."""
    if model.is_user:
        from harness.user_model import example_inputs

        return example_inputs(model)
    return torch.ones(model.input_shape(1))


def trace(net: torch.nn.Module, example: object, strict: bool = True) -> tuple[torch.jit.ScriptModule, list[str]]:
    """torch.jit.trace, returning the TracerWarnings it emitted (the branch it could not record).

    `strict=False` is for a user's model: it may return a dict or list (recorded as its example's structure),
    and its trace is not re-run as a sanity check (nn.TransformerEncoder's fast path fails that check with
    equal outputs); the outputs check against the eager reference is what tells a wrong trace.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, example, strict=strict, check_trace=strict)
    for w in caught:
        if not issubclass(w.category, torch.jit.TracerWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    messages = [str(w.message) for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    return traced, list(dict.fromkeys(messages))


def _warn(message: str) -> None:
    """One line on stderr: the cache healed itself, and the user should know which file was bad."""
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to save to, renamed over `path` once the block succeeds: no half files.

    For writers that want a path (torch.save, ScriptModule.save, ndarray.tofile); the caller holds the lock.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_problem(path: Path, sha256: str, size: int | None = None) -> str | None:
    """What is wrong with one recorded file (missing, truncated, altered), naming it; None if it is intact."""
    if not path.exists():
        return f"{path} is missing"
    actual = path.stat().st_size
    if size is not None and actual != size:
        why = "truncated" if actual < size else "altered"
        return f"{path} has {actual} bytes, its record says {size} ({why}?)"
    if sha256_file(path) != sha256:
        return f"{path} does not match its recorded sha256 (altered or corrupt)"
    return None


def check_model_files(files: ModelFiles) -> str | None:
    """The first problem with a model folder's recorded files (or its record model.json), or None.

    Only reports, so the caller decides: a derived folder under build/ is retrained (train_and_export),
    a user-supplied model is refused (require_intact).
    """
    try:
        meta = json.loads(files.meta.read_text())
        recorded: dict[str, str] = dict(meta["sha256"])
        sizes: dict[str, int] = dict(meta.get("bytes", {}))  # absent in records written before sizes were kept
    except FileNotFoundError:
        return f"{files.meta} is missing"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{files.meta} is unreadable ({exc!r})"
    unrecorded = sorted({files.torchscript.name, files.state_dict.name} - set(recorded))  # every kind writes these
    if unrecorded:
        return f"{files.meta} does not record {', '.join(unrecorded)} (altered?)"
    for name in recorded:
        problem = file_problem(files.dir / name, recorded[name], sizes.get(name))
        if problem:
            return problem
    return None


def require_intact(files: ModelFiles) -> None:
    """For a user-supplied model (files outside build/ the user points to): never rebuilt, so any problem
    is a UserError naming the file, where a derived one would be retrained."""
    problem = check_model_files(files)
    if problem:
        raise UserError(f"{problem}: a user-supplied model is never rebuilt: restore the file or point to another")


def train_and_export(model: ModelSpec, inputs: InputSpec, cache_root: Path) -> ModelFiles:
    """Train once per distinct spec; later calls find the exports in the cache.

    Everything here is derived from the seeds, so a damaged folder is retrained and exported again (one
    warning line naming the first bad file) instead of stopping the run.
    """
    if model.is_user:
        from harness import user_model

        d, meta = user_model.prepare(model, cache_root)
        return ModelFiles(d, d / "model.ts.pt", d / "model.state.pt", d / "weights.bin", d / "model.json",
                          source=d / next(iter(meta["sha256"])))
    key = spec_hash(
        {"model": dataclasses.asdict(model), "low": inputs.low, "high": inputs.high, "torch": torch.__version__}
    )
    d = cache_root / "models" / key
    files = ModelFiles(d, d / "model.ts.pt", d / "model.state.pt", d / "weights.bin", d / "model.json")
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / ".lock")):
        if any(p.exists() for p in (files.meta, files.torchscript, files.state_dict)):  # else: never made
            problem = check_model_files(files)
            if problem is None:
                return files
            _warn(f"{problem}: retraining the model and exporting it again")
        _build(model, inputs, files)
    return files


def _build(model: ModelSpec, inputs: InputSpec, files: ModelFiles) -> None:
    """Train (seeded) and write every file atomically, model.json last: it vouches for the others."""
    net_cls = load_net_class(model, files.dir)
    torch.manual_seed(model.training.seed)
    net = net_cls()
    report: dict[str, float] = {}
    if model.is_mlp:
        report = _train(net, model, inputs)
    elif model.kind == "conv_bn_relu":
        _init_batch_norm(net, model.training.seed)
    net.eval()
    with atomic_path(files.state_dict) as tmp:
        torch.save(net.state_dict(), tmp)
    traced, trace_warnings = trace(net, trace_example(model))
    with atomic_path(files.torchscript) as tmp:
        traced.save(str(tmp))
    written = [files.torchscript, files.state_dict]
    if model.is_mlp:
        with atomic_path(files.weights) as tmp:
            raw_weights(net).tofile(tmp)
        written.append(files.weights)
    write_json(files.meta, {
        "spec": dataclasses.asdict(model),
        **report,
        "torch": torch.__version__,
        "sample_shape": list(model.sample_shape),
        "output_shape": list(model.output_shape),
        "trace_warnings": trace_warnings,
        "sha256": {p.name: sha256_file(p) for p in written},
        "bytes": {p.name: p.stat().st_size for p in written},
    })


def load_eager(model: ModelSpec, files: ModelFiles) -> torch.nn.Module:
    """The eager module with the exported state dict, in eval mode."""
    net = load_net_class(model, files.dir)()
    net.load_state_dict(torch.load(files.state_dict, weights_only=True))  # tensors only, never code
    return net.eval()


def _chunk_rows(model: ModelSpec) -> int:
    """Samples per eager call: large batches for speed, but a bounded activation size for images."""
    if model.kind == "conv_bn_relu":
        return 8
    widest = max((*model.layers, *model.sample_shape))
    return max(1, (64 << 20) // (4 * widest))


def reference_outputs(model: ModelSpec, files: ModelFiles, x: np.ndarray) -> np.ndarray:
    """The Python reference: the eager module with the exported state dict, float32 [n, output_size].

    Row-wise kinds run in batches; mlp_branch runs one sample per call, since its branch depends on the
    whole input tensor and a batch would change the answer.
    """
    net = load_eager(model, files)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    out = np.empty((n, model.output_size), dtype="<f4")
    with torch.no_grad():
        if model.kind == "mlp_branch":
            shape = model.input_shape(1)
            for i in range(n):
                out[i] = net(torch.from_numpy(x[i]).reshape(shape)).reshape(-1).numpy()
            return out
        step = _chunk_rows(model)
        for s in range(0, n, step):
            chunk = torch.from_numpy(x[s : s + step]).reshape(-1, *model.sample_shape)
            out[s : s + step] = net(chunk).reshape(chunk.shape[0], -1).numpy()
    return out
