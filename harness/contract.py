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


WARMUP_KEYS = ("warmup_s", "warmup_calls_made", "warmup_ns")  # the result's record of the warm-up


def warmup_problem(job: dict[str, Any], result: dict[str, Any]) -> str | None:
    """None when the result's warm-up is the job's (docs/runner-contract.md, Sequence step 4), else one line.

    The same rule for every runtime: at least warmup_calls calls, and at least warmup_s seconds from the warm-up's
    start to its last call's end. A job without warmup_s (written before it existed) is not checked.
    """
    if "warmup_s" not in job:
        return None
    missing = [k for k in WARMUP_KEYS if k not in result]
    if missing:
        return f"'{missing[0]}' is missing: the runtime does not report its warm-up (docs/runner-contract.md)"
    if result["warmup_s"] != job["warmup_s"]:
        return f"'warmup_s' is {result['warmup_s']}, the job's is {job['warmup_s']}"
    if result["warmup_calls_made"] < job["warmup_calls"]:
        return (f"'warmup_calls_made' is {result['warmup_calls_made']}, fewer than the job's warmup_calls "
                f"{job['warmup_calls']}")
    if result["warmup_ns"] < job["warmup_s"] * 1e9:
        return (f"'warmup_ns' is {result['warmup_ns']}: the warm-up ended before the job's warmup_s "
                f"({job['warmup_s']} s) had passed")
    return None


def check_job(job: dict[str, Any]) -> None:
    """The harness's own job must obey the schema: a failure here is a harness bug, not a runner's."""
    found = problem("job", job)
    if found:
        raise ValueError(f"the harness wrote a job that breaks docs/schemas/job.schema.json: {found}")
