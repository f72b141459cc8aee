"""Build the suite's model from its spec, train it (seeded), and export every form a runner loads.

Exports, all from the same weights: the traced TorchScript file (as in the seed), the state dict
(Python eager) and a raw float32 file (C++ API and the raw floor). Cached by a hash of the spec.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from harness.config import InputSpec, ModelSpec
from harness.errors import UserError
from harness.files import sha256_file, spec_hash, write_json
from harness.render import render_model_module


@dataclass(frozen=True)
class ModelFiles:
    """Paths of one trained model's exports, plus what training reported."""

    dir: Path
    torchscript: Path
    state_dict: Path
    weights: Path
    meta: Path


def target(name: str, x: torch.Tensor, out_features: int) -> torch.Tensor:
    """The function the model learns (BRIEF 000: f(x1, x2) = |x1| + x2), one column per output."""
    if name == "abs_x1_plus_x2":
        y = x[:, 0].abs() + x[:, 1]
        return y.unsqueeze(1).expand(-1, out_features)
    raise ValueError(f"unknown target {name}")


def load_net_class(model: ModelSpec, where: Path) -> type[torch.nn.Module]:
    """Import the rendered model.py: training uses the very class the eager runner uses."""
    path = render_model_module(model, where)
    spec = importlib.util.spec_from_file_location(f"model_{where.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Net


def raw_weights(net: torch.nn.Module) -> np.ndarray:
    """Per Linear in order: weight [out, in] row-major, then bias (docs/runner-contract.md)."""
    parts = []
    for layer in net.modules():
        if isinstance(layer, torch.nn.Linear):
            parts += [layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy().ravel()]
    return np.concatenate(parts).astype("<f4")


def train_and_export(model: ModelSpec, inputs: InputSpec, cache_root: Path) -> ModelFiles:
    """Train once per distinct spec; later calls find the exports in the cache."""
    key = spec_hash(
        {"model": dataclasses.asdict(model), "low": inputs.low, "high": inputs.high, "torch": torch.__version__}
    )
    d = cache_root / "models" / key
    files = ModelFiles(d, d / "model.ts.pt", d / "model.state.pt", d / "weights.bin", d / "model.json")
    d.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d / ".lock")):
        if files.meta.exists():
            check_model_files(files)
            return files
        net_cls = load_net_class(model, d)
        torch.manual_seed(model.training.seed)
        gen = torch.Generator().manual_seed(model.training.seed)
        net = net_cls()
        opt = torch.optim.SGD(net.parameters(), lr=model.training.learning_rate)
        t0 = time.perf_counter()
        loss = torch.tensor(float("nan"))
        for _ in range(model.training.steps):
            x = torch.empty(model.training.batch_size, model.layers[0]).uniform_(inputs.low, inputs.high, generator=gen)
            loss = torch.nn.functional.mse_loss(net(x), target(model.target, x, model.layers[-1]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s = time.perf_counter() - t0
        net.eval()
        torch.save(net.state_dict(), files.state_dict)
        torch.jit.trace(net, torch.zeros(model.layers[0])).save(str(files.torchscript))
        raw_weights(net).tofile(files.weights)
        write_json(files.meta, {
            "spec": dataclasses.asdict(model),
            "final_loss": loss.item(),
            "train_seconds": round(train_s, 3),
            "torch": torch.__version__,
            "sha256": {p.name: sha256_file(p) for p in (files.torchscript, files.state_dict, files.weights)},
        })
    return files


def check_model_files(files: ModelFiles) -> None:
    """Refuse a missing or altered export: every runner must load exactly what was trained."""
    fix = f"delete {files.dir} and rerun to retrain and export it"
    recorded = json.loads(files.meta.read_text())["sha256"]
    for path in (files.torchscript, files.state_dict, files.weights):
        if not path.exists():
            raise UserError(f"model file {path} is missing: {fix}")
        if sha256_file(path) != recorded[path.name]:
            raise UserError(f"model file {path} does not match its recorded sha256 (altered or corrupt): {fix}")


def reference_outputs(model: ModelSpec, files: ModelFiles, x: np.ndarray) -> np.ndarray:
    """The Python reference: the eager module with the exported state dict, batched, float32."""
    net = load_net_class(model, files.dir)()
    net.load_state_dict(torch.load(files.state_dict))
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy().astype("<f4")
