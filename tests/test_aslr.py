"""`invoke aslr` tells layout from machine: its summary's verdict on synthetic processes, and a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import aslr
from harness.overrides import with_overrides
from harness.paths import BUILD_DIR
from harness.suite_file import load_suite


def _p(setting: str, first: float, second: float, median: float | None = None) -> dict[str, float | str]:
    median = first if median is None else median
    return {"aslr": setting, "median_us": median, "first_half_us": first, "second_half_us": second}


def test_modes_that_survive_aslr_off_and_change_mid_process_are_the_machines() -> None:
    # the fifth process switched from 10 to 18 µs in its second half, late enough to keep a 10.5 µs median
    rows = [_p(s, *fs) for s in ("on", "off") for fs in ((10, 10), (20, 20), (10, 10), (19, 19), (10, 18, 10.5))]
    text = aslr.summary(rows, "cpp-api")
    assert "| off | 5 | 3 | 2 | 1 |" in text and "come from the machine" in text


def test_modes_that_vanish_with_aslr_off_follow_layout() -> None:
    rows = [_p("on", *fs) for fs in ((10, 10), (20, 20), (10, 10), (20, 20))]
    rows += [_p("off", 10, 10) for _ in range(4)]
    assert "the modes follow memory layout" in aslr.summary(rows, "cpp-raw")


def test_a_real_run_under_setarch(tmp_path: Path) -> None:
    suite = with_overrides(load_suite("default"), calls=2000, repeats=1)
    rows = aslr.measure(suite, "cpp-raw", 2, BUILD_DIR, tmp_path, lambda _: None)
    assert [r["aslr"] for r in rows] == ["on", "off", "on", "off"]
    assert all(float(r["median_us"]) > 0 for r in rows)
    out = aslr.write(aslr.summary(rows, "cpp-raw"), tmp_path / "results")
    assert out.name.startswith("aslr-") and "cpp-raw" in out.read_text()
    with pytest.raises(Exception, match="not a runner of suite 'default'"):
        aslr.measure(suite, "nope", 2, BUILD_DIR, tmp_path / "x", lambda _: None)
