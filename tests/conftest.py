"""Shared fixtures: a valid suite dict to mutate, and paths to the test suites."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.paths import SUITES_DIR

TESTS = Path(__file__).parent
TINY = TESTS / "suites" / "tiny.toml"


@pytest.fixture
def suite_dict() -> dict[str, Any]:
    """The default suite as a dict, fresh for each test to break in its own way."""
    return copy.deepcopy(tomllib.loads((SUITES_DIR / "default.toml").read_text()))
