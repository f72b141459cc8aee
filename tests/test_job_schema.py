"""The C++ runners check each job against docs/schemas/job.schema.json with their own small interpreter
(cpp/runner_common.hpp, namespace runner::schema), which reads only the keywords the schema uses today.

These tests keep the schema inside that subset, so a new keyword fails here rather than being silently
ignored by C++, and check that the C++ build gets the schema itself, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from harness.model_spec import ModelSpec
from harness.paths import ROOT
from harness.render import render_files
from harness.runners import RUNNERS
from tests.jobs import JOB_SCHEMA

# What runner::schema::check interprets: the validation keywords, and the annotations it skips.
INTERPRETED = {"type", "enum", "required", "additionalProperties", "properties", "items", "minItems", "minimum",
               "minLength"}
ANNOTATIONS = {"$schema", "$id", "title", "description"}
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
SCHEMA_FILE = ROOT / "docs" / "schemas" / "job.schema.json"
RUNNER_COMMON = ROOT / "cpp" / "runner_common.hpp"


def _schemas(schema: dict[str, Any], where: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (sub)schema, where the interpreter meets one: the root, each `properties` value, `items`."""
    yield where, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _schemas(sub, f"{where}/properties/{name}")
    if "items" in schema:
        yield from _schemas(schema["items"], f"{where}/items")


def test_the_schema_uses_only_the_keywords_cpp_interprets() -> None:
    for where, schema in _schemas(JOB_SCHEMA):
        unknown = set(schema) - INTERPRETED - ANNOTATIONS
        assert not unknown, f"{where} uses {sorted(unknown)}: interpret it in cpp/runner_common.hpp first"


def test_the_keyword_arguments_are_of_the_forms_cpp_reads() -> None:
    for where, schema in _schemas(JOB_SCHEMA):
        types = schema.get("type", [])
        assert set([types] if isinstance(types, str) else types) <= TYPES, where
        assert schema.get("additionalProperties", False) is False, f"{where}: only additionalProperties false"
        assert isinstance(schema.get("items", {}), dict), f"{where}: items must be one schema, not a list"
        for key in ("minItems", "minLength"):
            assert type(schema.get(key, 0)) is int, f"{where}: {key}"
        assert type(schema.get("minimum", 0)) in (int, float), f"{where}: minimum"
        assert all(isinstance(name, str) for name in schema.get("required", [])), where


def test_cpp_lists_the_same_keywords() -> None:
    """The two lists (INTERPRETED here, kKeywords and kAnnotations in C++) are one subset."""
    text = RUNNER_COMMON.read_text()
    listed = {}
    for name in ("kKeywords", "kAnnotations"):
        m = re.search(name + r"\{([^}]*)\}", text)
        assert m, f"{name} not found in {RUNNER_COMMON}"
        listed[name] = set(re.findall(r'"([^"]+)"', m.group(1)))
    assert listed["kKeywords"] == INTERPRETED
    assert listed["kAnnotations"] == ANNOTATIONS


def test_every_cpp_runner_compiles_in_the_one_schema_unchanged() -> None:
    """The render step copies docs/schemas/job.schema.json byte for byte; CMake turns it into a header."""
    spec = ModelSpec("MyNN", (2, 8, 8, 1))
    for rid in ("cpp-torchscript", "cpp-api", "cpp-raw"):
        files = render_files(RUNNERS[rid], spec)
        assert files["job.schema.json"] == SCHEMA_FILE.read_bytes(), rid
        assert "job_schema.hpp" in files["CMakeLists.txt"].decode(), rid
    assert not list((ROOT / "cpp").glob("*.json")), "one copy of the schema: docs/schemas/job.schema.json"
