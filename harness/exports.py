"""Further exports of the trained model that some runners load (scripted, frozen, ONNX, …).

Each export is made once, from the same state dict as every other form, beside the model's other
files. An export this torch build cannot make is reported as the reason its runners are skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock

from harness.config import ModelSpec
from harness.models import ModelFiles, load_net_class


class ExportUnavailable(Exception):
    """This torch build cannot make the export (for example a backend it was built without)."""


def _scripted(net: torch.nn.Module, model: ModelSpec, path: Path) -> None:
    torch.jit.script(net).save(str(path))


# file name (relative to the model folder) → function writing it from the eager module in eval mode
EXPORTERS: dict[str, Callable[[torch.nn.Module, ModelSpec, Path], None]] = {
    "model.scripted.pt": _scripted,
}


def eager_model(model: ModelSpec, files: ModelFiles) -> torch.nn.Module:
    net = load_net_class(model, files.dir)()
    net.load_state_dict(torch.load(files.state_dict))
    return net.eval()


def ensure_exports(needs: tuple[str, ...], model: ModelSpec, files: ModelFiles) -> str | None:
    """Make the missing exports among `needs`; return None, or why one cannot be made here."""
    for name in needs:
        path = files.dir / name
        with FileLock(str(files.dir / ".lock")):
            if path.exists():
                continue
            tmp = path.with_name(f".{name}.tmp")
            try:
                EXPORTERS[name](eager_model(model, files), model, tmp)
            except ExportUnavailable as exc:
                tmp.unlink(missing_ok=True)
                return f"cannot export {name}: {exc}"
            tmp.replace(path)
    return None
