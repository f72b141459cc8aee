"""Templates render every runner from the one layer spec; a spec change reaches every language."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jinja2
import pytest

from harness.model_spec import ModelSpec
from harness.render import environment, render_files, render_model_module, render_runner, source_id
from harness.runners import RUNNERS

SEED = ModelSpec("MyNN", (2, 8, 8, 1))
WIDE = ModelSpec("Wide", (2, 16, 16, 16, 1), activation="tanh")


@pytest.mark.parametrize("rid", sorted(RUNNERS))
def test_every_runner_renders(rid: str) -> None:
    files = render_files(RUNNERS[rid], SEED)
    assert files
    assert all(content for content in files.values())


@pytest.mark.parametrize("rid", ["python-eager", "cpp-api", "cpp-raw"])
def test_layer_spec_changes_the_source(rid: str) -> None:
    a, b = render_files(RUNNERS[rid], SEED), render_files(RUNNERS[rid], WIDE)
    assert source_id(a) != source_id(b)
    text = b"".join(b.values()).decode()
    assert "16" in text
    assert "tanh" in text


def test_spec_independent_runners_share_one_build() -> None:
    """The TorchScript runners load the model file, so their source does not depend on the spec."""
    for rid in ("python-torchscript", "cpp-torchscript"):
        assert source_id(render_files(RUNNERS[rid], SEED)) == source_id(render_files(RUNNERS[rid], WIDE))


def test_python_model_matches_spec() -> None:
    text = render_files(RUNNERS["python-eager"], WIDE)["model.py"].decode()
    assert "torch.nn.Linear(2, 16)" in text and "torch.nn.Linear(16, 1)" in text
    assert text.count("torch.tanh(") == 3 and "NetColumns" not in text  # the eager runner's model: rows only


def test_columns_model_is_rendered_for_its_export(tmp_path: Path) -> None:
    text = render_model_module(WIDE, tmp_path, columns=True).read_text()
    rows, columns = text.split("class NetColumns(Net):")
    assert rows.count("torch.tanh(") == 3 and columns.count("torch.tanh(") == 3  # both layouts, 3 hidden layers
    assert columns.count("torch.addmm(") == 4 and "x.reshape(-1, 2).t()" in columns
    compile(text, "model.py", "exec")


def test_render_writes_once_per_source(tmp_path: Path) -> None:
    src = render_runner(RUNNERS["cpp-raw"], SEED, tmp_path)
    mtimes = {p: p.stat().st_mtime_ns for p in src.iterdir()}
    again = render_runner(RUNNERS["cpp-raw"], SEED, tmp_path)
    assert again == src
    assert {p: p.stat().st_mtime_ns for p in src.iterdir()} == mtimes
    other = render_runner(RUNNERS["cpp-raw"], WIDE, tmp_path)
    assert other != src


def test_missing_template_value_fails_loudly() -> None:
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ model.nope }}").render(model={})
    broken = dataclasses.replace(RUNNERS["cpp-raw"], options=())
    assert render_files(broken, SEED)  # the registry's own options are all a template needs
