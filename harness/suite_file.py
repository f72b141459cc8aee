"""Read a suite or collection file (TOML) and check every value: they reach templates and command lines."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from harness import claims, runner_rows, verify
from harness.errors import UserError
from harness.model_spec import MLP_KINDS, USER_KINDS, ModelSpec, TensorSpec, Training
from harness.paths import EXAMPLES_DIR, SUITES_DIR
from harness.runners import RUNNERS
from harness.suite import Collection, InputSpec, LoadSpec, RunnerChoice, RunSpec, Suite
from harness.suite_schema import COLLECTION_SCHEMA, SCHEMA, validate


def resolve_suite_path(name_or_path: str | None) -> Path:
    """A bare name means harness/suites/NAME.toml; anything else is a path."""
    if not name_or_path:
        return SUITES_DIR / "default.toml"
    candidate = Path(name_or_path)
    if candidate.suffix == "" and "/" not in name_or_path:
        candidate = SUITES_DIR / f"{name_or_path}.toml"
        if not candidate.is_file():
            candidate = EXAMPLES_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for d in (SUITES_DIR, EXAMPLES_DIR) for p in d.glob("*.toml")))
        raise UserError(f"suite '{name_or_path}' not found: give a TOML file path or one of: {known}")
    return candidate


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}): fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text: save the suite as UTF-8 TOML") from None


def load_suite(name_or_path: str | None = None) -> Suite | Collection:
    """Read, validate and return a suite (or a collection of suites); any problem is a UserError naming
    file, field and fix."""
    path = resolve_suite_path(name_or_path)
    data = _read_toml(path)
    if "parts" in data:
        return parse_collection(data, path)
    return parse_suite(data, str(path))


def parse_collection(data: dict[str, Any], path: Path) -> Collection:
    """A collection names its parts: suites beside it (`name` or `name.toml`), else in harness/suites."""
    validate(data, COLLECTION_SCHEMA, str(path))
    parts = []
    for k, part in enumerate(data["parts"]):
        file = part if part.endswith(".toml") else f"{part}.toml"
        candidates = [path.parent / file, SUITES_DIR / file, EXAMPLES_DIR / file]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UserError(f"{path}: parts[{k}]: suite '{part}' not found beside it or in {SUITES_DIR}: "
                            "give the name of a suite file")
        sub = _read_toml(found)
        if "parts" in sub:
            raise UserError(f"{path}: parts[{k}]: '{part}' is itself a collection: list its parts instead")
        parts.append(parse_suite(sub, str(found)))
    names = [s.name for s in parts]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: parts: two parts have the same suite name: give each suite its own name")
    return Collection(data["name"], data.get("description", ""), str(path), tuple(parts))


def parse_suite(data: dict[str, Any], source: str) -> Suite:
    """Validate a parsed suite dict (schema first, then the rules a schema cannot say)."""
    validate(data, SCHEMA, source)

    def bad(field: str, problem: str, fix: str) -> UserError:
        return UserError(f"{source}: {field}: {problem}: {fix}")

    model = _model(data["model"], bad)
    if model.is_user:
        model = _user_model(model, data["model"], data["inputs"], Path(source).parent, bad)
    elif "tensors" in data["inputs"]:
        raise bad("inputs.tensors", f"a {model.kind} model takes the one input its spec gives",
                  "remove it; tensors describe a user's model's inputs (kind torchscript, pt2 or factory)")
    r = data["run"]
    run = RunSpec(**r)

    choices = runner_rows.expand(data["runners"], data.get("sweep", {}), run, model.kind, bad)

    i = {k: v for k, v in data["inputs"].items() if k != "tensors"}
    if model.is_user:
        if run.batch != 1 or any(c.batch != 1 for c in choices):
            raise bad("run.batch", "a user's model is called with the input shapes given, batch 1",
                      "give the batch in the input shape itself (e.g. [8, 3, 224, 224]) and leave batch out")
        i.setdefault("count", min(USER_SAMPLES, runner_rows.samples_needed(run, choices)))
    for key in ("low", "high"):
        if key in i and not math.isfinite(i[key]):
            raise bad(f"inputs.{key}", f"{i[key]} is not finite", "give a finite number")
    count = i.get("count", runner_rows.samples_needed(run, choices))
    inputs = InputSpec(count=count, fixed_count="count" in i, **{k: v for k, v in i.items() if k != "count"})
    if inputs.low >= inputs.high:
        raise bad("inputs", f"low ({inputs.low}) must be below high ({inputs.high})", "swap or widen them")
    biggest = max(c.batch for c in choices)
    if inputs.count < biggest:
        raise bad("inputs.count", f"{inputs.count} samples cannot fill a batch of {biggest}",
                  f"make inputs.count ≥ {biggest} (or leave it out: it defaults to what the calls need)")
    claims.check(data.get("claims", []), {c.name for c in choices} | {c.family for c in choices} | set(RUNNERS), bad)
    default = (verify.USER_ATOL, verify.USER_RTOL) if model.is_user else (verify.ATOL, verify.RTOL)
    v = data.get("verify", {})
    suite = Suite(
        name=data["name"], description=data.get("description", ""), source=source,
        model=model, inputs=inputs, run=run, runners=choices, claims=tuple(data.get("claims", [])),
        tolerance=(v.get("atol", default[0]), v.get("rtol", default[1])),
        load=_load(data["load"], choices, bad) if "load" in data else None,
    )
    runner_rows.check_blocks(suite)
    return suite


def _load(table: dict[str, Any], choices: tuple[RunnerChoice, ...], bad: Any) -> LoadSpec:
    """[load]: its rows must be the suite's own (they are run from its builds), its lists kept as tuples."""
    names = {c.name for c in choices}
    for k, name in enumerate(table.get("runners", [])):
        if name not in names:
            raise bad(f"load.runners[{k}]", f"'{name}' is not a row of this suite",
                      "list it under [[runners]] too, or use one of " + ", ".join(sorted(names)))
    return LoadSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in table.items()})


def _model(m: dict[str, Any], bad: Any) -> ModelSpec:
    """The model table: the keys of its kind only, checked against each other."""
    kind = m.get("kind", "mlp")
    allowed = {"torchscript": {"path", "training"}, "pt2": {"path", "training"}, "factory": {"path", "training"},
               "mlp": {"layers", "activation", "target", "training"},
               "mlp_branch": {"layers", "activation", "target", "training"},
               "op_chain": {"length", "size"},
               "conv_bn_relu": {"channels", "kernel", "image", "training"}}[kind]
    for key in m:
        if key not in allowed | {"name", "kind"}:
            raise bad(f"model.{key}", f"not a setting of a {kind} model",
                      "remove it; a " + kind + " model takes " + ", ".join(sorted(allowed)))
    if kind in USER_KINDS and "path" not in m:
        example = "FILE.py:FUNCTION" if kind == "factory" else "the model file"
        raise bad("model", f"a {kind} model needs 'path'", f"add path = \"{example}\"")
    if kind in MLP_KINDS and "layers" not in m:
        raise bad("model", f"a {kind} model needs 'layers'", "add layers = [inputs, hidden…, outputs]")
    spec = ModelSpec(
        name=m["name"], kind=kind,
        layers=tuple(m.get("layers", ())),
        activation=m.get("activation", "relu"),
        target=m.get("target", "abs_x1_plus_x2"),
        training=Training(**m.get("training", {})),
        **{k: m[k] for k in ("length", "size", "kernel") if k in m},
        **{k: tuple(m[k]) for k in ("channels", "image") if k in m},
        path=m.get("path", ""),
    )
    if spec.is_mlp and spec.target == "abs_x1_plus_x2" and spec.layers[0] < 2:
        raise bad("model.layers", "target abs_x1_plus_x2 needs at least 2 inputs", "make layers[0] ≥ 2")
    if kind == "conv_bn_relu" and min(spec.image) < spec.kernel:
        raise bad("model.image", f"{list(spec.image)} is smaller than the kernel {spec.kernel}",
                  "make the image at least as large as the kernel")
    return spec


USER_SAMPLES = 16  # distinct samples per input tensor of a user's model (calls wrap over them): images are large


def _user_model(model: ModelSpec, m: dict[str, Any], inputs: dict[str, Any], base: Path, bad: Any) -> ModelSpec:
    """The model file resolved (relative paths from the suite's folder) and checked, and its input tensors.

    The tensors come from [[inputs.tensors]], or else from the example inputs a factory returns.
    """
    text = m["path"]
    file, function = (text.rsplit(":", 1) if model.kind == "factory" and ":" in text else (text, ""))
    if model.kind == "factory" and (not function.isidentifier() or not file.endswith(".py")):
        raise bad("model.path", f"'{text}' is not FILE.py:FUNCTION", "name the Python file and its function, "
                  "e.g. path = \"mynet.py:build\"")
    path = Path(file).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.is_file():
        raise bad("model.path", f"{path} does not exist or is not a file", "give the path of your model file")
    resolved = f"{path}:{function}" if function else str(path)
    if model.kind != "factory":
        from harness.user_model import classify

        found = classify(path)  # refuses a pickle before anything loads it
        expected = "torchscript" if model.kind == "torchscript" else ("exported", "aoti")
        if found not in expected:
            raise bad("model.kind", f"{path} is {'a TorchScript file' if found == 'torchscript' else 'a .pt2'}",
                      f"use kind = \"{'torchscript' if found == 'torchscript' else 'pt2'}\"")
    if "tensors" in inputs:
        tensors = tuple(TensorSpec(**{**t, "shape": tuple(t["shape"])}) for t in inputs["tensors"])
    elif model.kind == "factory":
        tensors = _tensors_from_examples(resolved, model.training.seed, bad)
    else:
        raise bad("inputs.tensors", "a model file does not say what it takes",
                  "add [[inputs.tensors]] with shape = [...] (and dtype) per input, or --input-shape")
    for k, t in enumerate(tensors):
        if t.distribution != "normal" and t.low > t.high:
            raise bad(f"inputs.tensors[{k}]", f"low ({t.low}) is above high ({t.high})", "swap them")
    return dataclasses.replace(model, path=resolved, tensors=tensors)


def _tensors_from_examples(factory: str, seed: int, bad: Any) -> tuple[TensorSpec, ...]:
    """Input tensors like the factory's example inputs: their shapes and dtypes, values over their range."""
    import torch

    from harness.user_model import load_factory

    _, examples = load_factory(factory, seed)
    if examples is None:
        raise bad("inputs.tensors", f"factory {factory} returns no example inputs",
                  "add [[inputs.tensors]] with shape = [...] per input, or return (model, example_inputs)")
    examples = examples if isinstance(examples, (tuple, list)) else (examples,)
    names = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64", torch.int32: "int32",
             torch.bool: "bool"}
    out = []
    for k, x in enumerate(examples):
        if not isinstance(x, torch.Tensor) or x.dtype not in names:
            raise bad("inputs.tensors", f"example input {k} of {factory} is not a tensor of "
                      + ", ".join(names.values()), "return tensors of those dtypes, or give [[inputs.tensors]]")
        dtype = names[x.dtype]
        if dtype in ("float32", "float64"):
            out.append(TensorSpec(shape=tuple(x.shape), dtype=dtype, distribution="normal", low=0.0, high=1.0))
        else:
            low, high = (0, 1) if dtype == "bool" else (int(x.min()), int(x.max()))
            out.append(TensorSpec(shape=tuple(x.shape), dtype=dtype, distribution="integers", low=low, high=high))
    return tuple(out)
