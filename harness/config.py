"""Load a suite (TOML), validate every value against a schema, and apply command-line overrides.

Values from a suite reach templates and command lines, so nothing passes unchecked: types, ranges,
identifiers and cross-field rules are all verified here, with errors naming file, field and fix.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import UserError
from harness.paths import SUITES_DIR
from harness.runners import GRAD_MODES, RUNNERS

IDENT = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
ACTIVATIONS = ("relu", "tanh", "sigmoid")
TARGETS = ("abs_x1_plus_x2",)

_INT = {"type": "integer"}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "model", "inputs", "run", "runners"],
    "properties": {
        "name": {"type": "string", "pattern": IDENT},
        "description": {"type": "string", "maxLength": 500},
        "model": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "layers"],
            "properties": {
                "name": {"type": "string", "pattern": IDENT},
                "layers": {
                    "type": "array", "minItems": 2, "maxItems": 16,
                    "items": {**_INT, "minimum": 1, "maximum": 4096},
                },
                "activation": {"enum": list(ACTIVATIONS)},
                "target": {"enum": list(TARGETS)},
                "training": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "seed": {**_INT, "minimum": 0, "maximum": 2**31 - 1},
                        "steps": {**_INT, "minimum": 0, "maximum": 1_000_000},
                        "batch_size": {**_INT, "minimum": 1, "maximum": 65536},
                        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 10},
                    },
                },
            },
        },
        "inputs": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "count": {**_INT, "minimum": 1, "maximum": 100_000_000},
                "distribution": {"enum": ["uniform"]},
                "low": {"type": "number"},
                "high": {"type": "number"},
                "seed": {**_INT, "minimum": 0, "maximum": 2**31 - 1},
            },
        },
        "run": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "calls": {**_INT, "minimum": 1, "maximum": 100_000_000},
                "warmup_calls": {**_INT, "minimum": 1, "maximum": 10_000_000},
                "repeats": {**_INT, "minimum": 1, "maximum": 100},
                "threads": {**_INT, "minimum": 1, "maximum": 256},
                "interop_threads": {**_INT, "minimum": 1, "maximum": 256},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
            },
        },
        "runners": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {"type": "string", "pattern": IDENT},
                    "name": {"type": "string", "pattern": IDENT},
                    "grad_mode": {"enum": list(GRAD_MODES)},
                    "block": {**_INT, "minimum": 1, "maximum": 1_000_000},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Training:
    seed: int = 0
    steps: int = 4000
    batch_size: int = 64
    learning_rate: float = 0.005


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: tuple[int, ...]
    activation: str = "relu"
    target: str = "abs_x1_plus_x2"
    training: Training = Training()


@dataclass(frozen=True)
class InputSpec:
    count: int
    distribution: str = "uniform"
    low: float = -10.0
    high: float = 10.0
    seed: int = 1


@dataclass(frozen=True)
class RunSpec:
    calls: int = 100_000
    warmup_calls: int = 1000
    repeats: int = 5
    threads: int = 1
    interop_threads: int = 1
    timeout_s: float | None = None  # None: derived from the call count


@dataclass(frozen=True)
class RunnerChoice:
    """One row of the results: a registered runner (`id`) with its settings, under a unique `name`."""

    id: str
    grad_mode: str
    block: int
    name: str


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    source: str  # the file it came from, for messages and the report
    model: ModelSpec
    inputs: InputSpec
    run: RunSpec
    runners: tuple[RunnerChoice, ...]


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


def load_suite(name_or_path: str | None = None) -> Suite:
    """Read, validate and return a suite; any problem is a UserError naming file, field and fix."""
    path = resolve_suite_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML ({exc}): fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text: save the suite as UTF-8 TOML") from None
    return parse_suite(data, str(path))


def _field(error: jsonschema.ValidationError) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path]
    return "".join(parts).lstrip(".") or "(top level)"


def _fix(error: jsonschema.ValidationError) -> str:
    v = error.validator
    if v == "additionalProperties":
        return "remove it or correct its spelling"
    if v == "required":
        return "add it"
    if v == "enum":
        return "use one of " + ", ".join(map(str, error.validator_value))
    if v == "pattern":
        return "use letters, digits, '-' or '_' (starting with a letter, at most 64)"
    if v in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems"):
        return f"keep it within the allowed range ({v} {error.validator_value})"
    if v == "type":
        return f"give a value of type {error.validator_value}"
    return "see the default suite for a valid example"


def parse_suite(data: dict[str, Any], source: str) -> Suite:
    """Validate a parsed suite dict (schema first, then the rules a schema cannot say)."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise UserError(f"{source}: {_field(e)}: {e.message}: {_fix(e)}")

    def bad(field: str, problem: str, fix: str) -> UserError:
        return UserError(f"{source}: {field}: {problem}: {fix}")

    m = data["model"]
    model = ModelSpec(
        name=m["name"],
        layers=tuple(m["layers"]),
        activation=m.get("activation", "relu"),
        target=m.get("target", "abs_x1_plus_x2"),
        training=Training(**m.get("training", {})),
    )
    if model.target == "abs_x1_plus_x2" and model.layers[0] < 2:
        raise bad("model.layers", "target abs_x1_plus_x2 needs at least 2 inputs", "make layers[0] ≥ 2")

    r = data["run"]
    run = RunSpec(**r)
    i = data["inputs"]
    for key in ("low", "high"):
        if key in i and not math.isfinite(i[key]):
            raise bad(f"inputs.{key}", f"{i[key]} is not finite", "give a finite number")
    inputs = InputSpec(count=i.get("count", run.calls), **{k: v for k, v in i.items() if k != "count"})
    if inputs.low >= inputs.high:
        raise bad("inputs", f"low ({inputs.low}) must be below high ({inputs.high})", "swap or widen them")
    if inputs.count < run.calls:
        raise bad("inputs.count", f"{inputs.count} samples for {run.calls} calls",
                  "make inputs.count ≥ run.calls (or leave it out: it defaults to run.calls)")

    choices = []
    seen: set[str] = set()
    for k, entry in enumerate(data["runners"]):
        rid = entry["id"]
        if rid not in RUNNERS:
            raise bad(f"runners[{k}].id", f"unknown runner '{rid}'", "use one of " + ", ".join(RUNNERS))
        name = entry.get("name", rid)
        if name in seen:
            raise bad(f"runners[{k}]", f"runner '{name}' listed twice",
                      "list each runner once, or give each variant its own `name`")
        seen.add(name)
        reg = RUNNERS[rid]
        grad = entry.get("grad_mode", reg.grad_mode)
        if not reg.uses_torch and grad != reg.grad_mode:
            raise bad(f"runners[{k}].grad_mode", f"{rid} uses no libtorch", "leave grad_mode out for it")
        choices.append(RunnerChoice(rid, grad, entry.get("block", reg.block), name))
    suite = Suite(
        name=data["name"], description=data.get("description", ""), source=source,
        model=model, inputs=inputs, run=run, runners=tuple(choices),
    )
    check_blocks(suite)
    return suite


def check_blocks(suite: Suite) -> None:
    """Each runner times whole blocks, so the call count must divide evenly."""
    for c in suite.runners:
        if suite.run.calls % c.block:
            raise UserError(
                f"{suite.source}: runners.{c.name}.block: {suite.run.calls} calls do not split into blocks of "
                f"{c.block}: choose a call count that is a multiple of {c.block}"
            )


def with_overrides(
    suite: Suite, calls: int | None = None, repeats: int | None = None, only: str | None = None
) -> Suite:
    """Apply `--calls`, `--repeats`, `--only` for one run, with the same checks as the file."""
    run, inputs, runners = suite.run, suite.inputs, suite.runners
    if calls is not None:
        if not 1 <= calls <= 100_000_000:
            raise UserError(f"--calls {calls}: out of range: give a number from 1 to 100000000")
        run = dataclasses.replace(run, calls=calls)
        inputs = dataclasses.replace(inputs, count=max(inputs.count, calls))
    if repeats is not None:
        if not 1 <= repeats <= 100:
            raise UserError(f"--repeats {repeats}: out of range: give a number from 1 to 100")
        run = dataclasses.replace(run, repeats=repeats)
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        listed = {c.name for c in runners}
        for w in wanted:
            if w not in listed:
                raise UserError(
                    f"--only {w}: not a runner of suite '{suite.name}': use one of " + ", ".join(sorted(listed))
                )
        runners = tuple(c for c in runners if c.name in wanted)
    out = dataclasses.replace(suite, run=run, inputs=inputs, runners=runners)
    check_blocks(out)
    return out
