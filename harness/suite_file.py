"""Read a suite or collection file (TOML) and check every value: they reach templates and command lines."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from harness import claims, runner_rows
from harness.errors import UserError
from harness.model_spec import MLP_KINDS, ModelSpec, Training
from harness.paths import SUITES_DIR
from harness.runners import RUNNERS
from harness.suite import Collection, InputSpec, RunSpec, Suite
from harness.suite_schema import COLLECTION_SCHEMA, SCHEMA, validate


def resolve_suite_path(name_or_path: str | None) -> Path:
    """A bare name means harness/suites/NAME.toml; anything else is a path."""
    if not name_or_path:
        return SUITES_DIR / "default.toml"
    candidate = Path(name_or_path)
    if candidate.suffix == "" and "/" not in name_or_path:
        candidate = SUITES_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
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
        candidates = [path.parent / file, SUITES_DIR / file]
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
    r = data["run"]
    run = RunSpec(**r)

    choices = runner_rows.expand(data["runners"], data.get("sweep", {}), run, model.kind, bad)

    i = data["inputs"]
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
    suite = Suite(
        name=data["name"], description=data.get("description", ""), source=source,
        model=model, inputs=inputs, run=run, runners=choices, claims=tuple(data.get("claims", [])),
    )
    runner_rows.check_blocks(suite)
    return suite


def _model(m: dict[str, Any], bad: Any) -> ModelSpec:
    """The model table: the keys of its kind only, checked against each other."""
    kind = m.get("kind", "mlp")
    allowed = {"mlp": {"layers", "activation", "target", "training"},
               "mlp_branch": {"layers", "activation", "target", "training"},
               "op_chain": {"length", "size"},
               "conv_bn_relu": {"channels", "kernel", "image", "training"}}[kind]
    for key in m:
        if key not in allowed | {"name", "kind"}:
            raise bad(f"model.{key}", f"not a setting of a {kind} model",
                      "remove it; a " + kind + " model takes " + ", ".join(sorted(allowed)))
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
    )
    if spec.is_mlp and spec.target == "abs_x1_plus_x2" and spec.layers[0] < 2:
        raise bad("model.layers", "target abs_x1_plus_x2 needs at least 2 inputs", "make layers[0] ≥ 2")
    if kind == "conv_bn_relu" and min(spec.image) < spec.kernel:
        raise bad("model.image", f"{list(spec.image)} is smaller than the kernel {spec.kernel}",
                  "make the image at least as large as the kernel")
    return spec
