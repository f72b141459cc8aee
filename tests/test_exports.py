"""Further exports hold the same weights as the traced model, and are made once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness import exports
from harness.config import InputSpec, ModelSpec, Training
from harness.models import train_and_export

SPEC = ModelSpec("MyNN", (2, 8, 8, 1), training=Training(steps=50))


@pytest.mark.parametrize("name", sorted(exports.EXPORTERS))
def test_export_matches_the_eager_model(tmp_path: Path, name: str) -> None:
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    assert exports.ensure_exports((name,), SPEC, files) is None
    mtime = (files.dir / name).stat().st_mtime_ns
    assert exports.ensure_exports((name,), SPEC, files) is None
    assert (files.dir / name).stat().st_mtime_ns == mtime
    x = torch.tensor([3.0, -4.0])
    if name.endswith(".pt"):
        with torch.no_grad():
            got = torch.jit.load(str(files.dir / name))(x)
            want = exports.eager_model(SPEC, files)(x)
        torch.testing.assert_close(got, want)


def test_unavailable_export_is_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no(*args: object) -> None:
        raise exports.ExportUnavailable("this torch build lacks XNNPACK")

    monkeypatch.setitem(exports.EXPORTERS, "model.mobile.ptl", no)
    files = train_and_export(SPEC, InputSpec(count=10), tmp_path)
    reason = exports.ensure_exports(("model.mobile.ptl",), SPEC, files)
    assert reason == "cannot export model.mobile.ptl: this torch build lacks XNNPACK"
    assert not (files.dir / "model.mobile.ptl").exists()
