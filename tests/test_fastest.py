"""The report's opening table: per language the fastest row that ran and matched, never the floor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import fastest


def table(rows: list[tuple[str, str, float, bool, int]]) -> pd.DataFrame:
    return pd.DataFrame([{
        "runner": name, "runner_id": name.split("@")[0], "language": lang, "method": f"how {name} calls",
        "status": "ok", "outputs_ok": matched, "median_us": us, "median_ci_low_us": us * 0.9,
        "median_ci_high_us": us * 1.1, "batch": batch,
    } for name, lang, us, matched, batch in rows])


def test_fastest_verified_path_per_language_against_the_floor(tmp_path: Path) -> None:
    df = table([
        ("python-eager", "Python", 60.0, True, 1), ("python-aoti-loader", "Python", 3.0, True, 1),
        ("python-wrong", "Python", 1.0, False, 1),  # faster, but its outputs did not match
        ("java-aoti", "Java", 1.5, True, 1),
        ("cpp-raw", "C++", 0.015, True, 1),  # the floor, never a candidate
        ("cpp-aoti", "C++", 1.2, True, 1), ("cpp-api", "C++", 10.0, True, 1),
        ("cpp-aoti@b64", "C++", 0.5, True, 64),  # another batch: not the cost of one call
    ])
    df.loc[df["runner"].eq("cpp-aoti@b64"), "runner_id"] = "cpp-aoti"
    found = {r["language"]: r for r in fastest.rows(df)}
    assert {k: v["runner"] for k, v in found.items()} == {
        "Python": "python-aoti-loader", "Java": "java-aoti", "C++": "cpp-aoti"}
    assert round(found["C++"]["x_floor"]) == 80 and found["Python"]["paths"] == 2
    text = fastest.table(list(found.values()))
    assert "× floor (cpp-raw 0.0150 µs)" in text and "3.00 [2.70–3.30]" in text
    assert fastest.plot(df, tmp_path / "paths.png") and (tmp_path / "paths.png").stat().st_size > 1000


def test_no_verified_path_gives_no_table_and_no_plot(tmp_path: Path) -> None:
    df = table([("python-eager", "Python", 60.0, False, 1)])
    assert fastest.rows(df) == [] and fastest.table([]) == ""
    assert not fastest.plot(df, tmp_path / "paths.png") and not (tmp_path / "paths.png").exists()
