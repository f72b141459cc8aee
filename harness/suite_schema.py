"""The suite and collection JSON Schemas with their limits, and a schema error told as file: field: problem: fix."""

from __future__ import annotations

from typing import Any

import jsonschema

from harness import claims
from harness.errors import UserError
from harness.jdks import SPEC_PATTERN as JDK_PATTERN
from harness.model_spec import DISTRIBUTIONS, DTYPES, MODEL_KINDS
from harness.runners import GRAD_MODES

IDENT = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
ACTIVATIONS = ("relu", "tanh", "sigmoid")
TARGETS = ("abs_x1_plus_x2",)

_INT = {"type": "integer"}
MAX_BATCH = 65536
SAFE_PATH = r"^[^\x00-\x1f\"'\\`$]+$"  # no control characters, quotes, backslashes, backticks or $
# one input tensor of a user's model ([[inputs.tensors]], harness/model_spec.py TensorSpec)
TENSOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["shape"],
    "properties": {
        "shape": {"type": "array", "minItems": 1, "maxItems": 8, "items": {**_INT, "minimum": 1, "maximum": 1 << 20}},
        "dtype": {"enum": list(DTYPES)},
        "distribution": {"enum": list(DISTRIBUTIONS)},
        "low": {"type": "number"},
        "high": {"type": "number"},
        "seed": {**_INT, "minimum": 0, "maximum": 2**31 - 1},
    },
}

# A collection: several suites run one after another into one run folder (e.g. every recipe).
COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "parts"],
    "properties": {
        "name": {"type": "string", "pattern": IDENT},
        "description": {"type": "string", "maxLength": 500},
        "parts": {"type": "array", "minItems": 1, "maxItems": 32, "uniqueItems": True,
                  "items": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{1,64}(\.toml)?$"}},
    },
}

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
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": IDENT},
                "kind": {"enum": list(MODEL_KINDS)},
                "length": {**_INT, "minimum": 1, "maximum": 100_000},
                "size": {**_INT, "minimum": 1, "maximum": 1_000_000},
                "channels": {"type": "array", "minItems": 2, "maxItems": 2,
                             "items": {**_INT, "minimum": 1, "maximum": 1024}},
                "kernel": {**_INT, "minimum": 1, "maximum": 15},
                "image": {"type": "array", "minItems": 2, "maxItems": 2,
                          "items": {**_INT, "minimum": 1, "maximum": 4096}},
                "layers": {
                    "type": "array", "minItems": 2, "maxItems": 16,
                    "items": {**_INT, "minimum": 1, "maximum": 4096},
                },
                # a user's model: its file, or FILE.py:FUNCTION; it reaches generated code (quoted) and paths only
                "path": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": SAFE_PATH},
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
                "distribution": {"enum": ["uniform", "integers"]},
                "low": {"type": "number"},
                "high": {"type": "number"},
                "seed": {**_INT, "minimum": 0, "maximum": 2**31 - 1},
                "tensors": {"type": "array", "minItems": 1, "maxItems": 16, "items": TENSOR},
            },
        },
        "verify": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"atol": {"type": "number", "minimum": 0, "maximum": 1e6},
                           "rtol": {"type": "number", "minimum": 0, "maximum": 1e6}},
        },
        "run": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "calls": {**_INT, "minimum": 1, "maximum": 100_000_000},
                "warmup_calls": {**_INT, "minimum": 1, "maximum": 10_000_000},
                "warmup_s": {"type": "number", "minimum": 0, "maximum": 3600},
                "repeats": {**_INT, "minimum": 1, "maximum": 100},
                "threads": {**_INT, "minimum": 1, "maximum": 256},
                "interop_threads": {**_INT, "minimum": 1, "maximum": 256},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
                "batch": {**_INT, "minimum": 1, "maximum": MAX_BATCH},
                "min_batched_calls": {**_INT, "minimum": 1, "maximum": 10_000_000},
                "instructions": {"type": "boolean"},
                "programs": {"type": "boolean"},
                "decomposition": {"type": "boolean"},
            },
        },
        "sweep": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "batch": {"type": "array", "minItems": 1, "maxItems": 16, "uniqueItems": True,
                          "items": {**_INT, "minimum": 1, "maximum": MAX_BATCH}},
                "threads": {"type": "array", "minItems": 1, "maxItems": 8, "uniqueItems": True,
                            "items": {**_INT, "minimum": 1, "maximum": 256}},
            },
        },
        "load": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "runners": {"type": "array", "maxItems": 32, "uniqueItems": True,
                            "items": {"type": "string", "pattern": IDENT}},
                "callers": {"type": "array", "minItems": 1, "maxItems": 8, "uniqueItems": True,
                            "items": {**_INT, "minimum": 1, "maximum": 256}},
                "closed_s": {"type": "number", "minimum": 0.05, "maximum": 3600},
                "duration_s": {"type": "number", "minimum": 0.05, "maximum": 3600},
                "search_s": {"type": "number", "minimum": 0.05, "maximum": 3600},
                "search_steps": {**_INT, "minimum": 1, "maximum": 32},
                "bound_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 60_000},
                "server_callers": {**_INT, "minimum": 1, "maximum": 256},
                "min_queries": {**_INT, "minimum": 1, "maximum": 100_000_000},
                "seed": {**_INT, "minimum": 0, "maximum": 2**31 - 1},
                "offline_batches": {"type": "array", "maxItems": 8, "uniqueItems": True,
                                    "items": {**_INT, "minimum": 1, "maximum": MAX_BATCH}},
            },
        },
        "claims": claims.SCHEMA,
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
                    "batch": {**_INT, "minimum": 1, "maximum": MAX_BATCH},
                    "threads": {**_INT, "minimum": 1, "maximum": 256},
                    "jdk": {"type": "string", "pattern": JDK_PATTERN},  # a Java runner's JDK (harness/jdks.py)
                },
            },
        },
    },
}


def validate(data: dict[str, Any], schema: dict[str, Any], source: str) -> None:
    """Raise a UserError for the most relevant violation, naming file, field, problem and fix."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        raise UserError(f"{source}: {_field(e)}: {e.message}: {_fix(e)}")


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
    if v == "pattern" and error.validator_value == SAFE_PATH:
        return "give a path without quotes, backslashes, backticks, $ or control characters"
    if v == "pattern" and error.validator_value == JDK_PATTERN:
        return "give a JDK's feature version (e.g. \"25\") or the absolute path of its home"
    if v == "pattern":
        return "use letters, digits, '-' or '_' (starting with a letter, at most 64)"
    if v in ("minimum", "maximum", "exclusiveMinimum", "minItems", "maxItems"):
        return f"keep it within the allowed range ({v} {error.validator_value})"
    if v == "type":
        return f"give a value of type {error.validator_value}"
    return "see the default suite for a valid example"
