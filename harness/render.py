"""Render a runner's jinja2 templates for one model spec into its own source folder."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import jinja2

from harness.files import write_atomic
from harness.java_build import JAVA_ARTIFACTS, dependencies_for
from harness.model_spec import ModelSpec
from harness.paths import ROOT
from harness.runners import Runner


def environment() -> jinja2.Environment:
    """StrictUndefined: a template that names a missing value fails instead of rendering blanks."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROOT)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def context(runner: Runner, model: ModelSpec) -> dict[str, Any]:
    """What every template may use; every value here was validated by harness/suite_file.py."""
    return {
        "runner": runner.id,
        "uses_torch": runner.uses_torch,
        "model": model_context(model),
        "java_artifacts": JAVA_ARTIFACTS,  # the Maven artifacts' versions, for the Java runners' pom
        "java_dependencies": dependencies_for(runner.template),  # the ones only this Java runner gets
        **factory_context(model),
    }


def model_context(model: ModelSpec) -> dict[str, Any]:
    """The model spec as plain values (lists, not tuples) for templates."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(model).items()}


def factory_context(model: ModelSpec) -> dict[str, str]:
    """A factory's file and function, for model.py (rendered with tojson: validated, and quoted anyway)."""
    if model.kind != "factory":
        return {}
    file, _, function = model.path.rpartition(":")
    return {"factory_file": file, "factory_function": function}


def render_files(runner: Runner, model: ModelSpec) -> dict[str, bytes]:
    """Rendered file name → content; files without a .j2 suffix are copied verbatim."""
    env = environment()
    ctx = context(runner, model)
    out: dict[str, bytes] = {}
    for template, name in runner.templates:
        if template.endswith(".j2"):
            out[name] = env.get_template(template).render(ctx).encode("utf-8")
        else:
            out[name] = (ROOT / template).read_bytes()
    return out


def source_id(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return h.hexdigest()[:16]


def render_runner(runner: Runner, model: ModelSpec, build_root: Path) -> Path:
    """Render into build_root/<runner>/<source id>/src, so each distinct source keeps its own cached build."""
    files = render_files(runner, model)
    src = build_root / runner.id / source_id(files) / "src"
    for name, content in files.items():
        target = src / name
        if not target.exists() or target.read_bytes() != content:
            write_atomic(target, content)
    return src


def render_model_module(model: ModelSpec, dest: Path, columns: bool = False) -> Path:
    """The Python model class alone (the same template the eager runner uses), for training.

    `columns` adds NetColumns (the MLP with samples as columns) for its export; the eager runner's
    model.py and its cached builds stay as they were.
    """
    text = environment().get_template("python/model.py.j2").render(
        model=model_context(model), columns=columns, **factory_context(model)
    )
    path = dest / "model.py"
    write_atomic(path, text)
    return path
