"""The runner contract's two JSON Schemas (docs/schemas/): the job the harness writes, the result it accepts."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from harness.paths import ROOT

SCHEMAS = ROOT / "docs" / "schemas"


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    """Integers are ints only, never 8.0 or true: the rule the Python, C++ and Java runtimes apply."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _c, v: isinstance(v, int) and not isinstance(v, bool))
    strict = jsonschema.validators.extend(base, type_checker=checker)
    return strict(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


def problem(name: str, document: Any) -> str | None:
    """None when `document` obeys schema `name` ("job" or "result"), else one line naming the first key at fault."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(k) for k in first.absolute_path)
    return f"'{where}': {first.message}" if where else first.message


def check_job(job: dict[str, Any]) -> None:
    """The harness's own job must obey the schema: a failure here is a harness bug, not a runner's."""
    found = problem("job", job)
    if found:
        raise ValueError(f"the harness wrote a job that breaks docs/schemas/job.schema.json: {found}")
