"""The suite loader accepts the bundled suites and refuses bad ones with a message naming field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.config import load_suite, parse_suite, with_overrides
from harness.errors import UserError
from harness.paths import SUITES_DIR
from tests.conftest import TINY


def test_default_suite_is_the_seed_experiment() -> None:
    s = load_suite()
    assert s.model.layers == (2, 8, 8, 1)
    assert s.model.activation == "relu"
    assert (s.inputs.low, s.inputs.high) == (-10.0, 10.0)
    assert (s.run.calls, s.run.repeats, s.run.threads) == (100_000, 5, 1)
    assert {"python-eager", "python-torchscript", "cpp-torchscript", "cpp-api", "cpp-raw"} <= {
        c.id for c in s.runners
    }


@pytest.mark.parametrize("path", [*sorted(SUITES_DIR.glob("*.toml")), TINY], ids=lambda p: p.stem)
def test_bundled_suites_load(path: Path) -> None:
    assert load_suite(str(path)).runners


def test_suite_by_name_and_unknown_name() -> None:
    assert load_suite("default").name == "default"
    with pytest.raises(UserError, match=r"suite 'nosuch' not found.*default"):
        load_suite("nosuch")


def test_malformed_toml_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[model\nlayers = [2, 1]\n")
    with pytest.raises(UserError, match=r"bad\.toml: not valid TOML .*line"):
        load_suite(str(bad))


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda d: d["run"].update(calls=-5), r"run\.calls: -5 is less than the minimum of 1"),
        (lambda d: d["run"].update(calls="many"), r"run\.calls: 'many' is not of type 'integer'"),
        (lambda d: d["run"].update(repeats=10**6), r"run\.repeats: .* maximum"),
        (lambda d: d["run"].update(threads=0), r"run\.threads"),
        (lambda d: d["model"].update(layers=[2, "8", 1]), r"model\.layers\[1\]"),
        (lambda d: d["model"].update(layers=[2]), r"model\.layers"),
        (lambda d: d["model"].update(activation="gelu"), r"model\.activation: .*use one of relu, tanh, sigmoid"),
        (lambda d: d["model"].update(name='x"); import os; os.system("rm -rf /'), r"model\.name: .*letters, digits"),
        (lambda d: d["runners"].append({"id": "rust-candle"}), r"runners\[\d+\]\.id: unknown runner 'rust-candle'"),
        (lambda d: d["runners"].append({"id": "cpp-api"}), r"listed twice"),
        (lambda d: d["runners"].append({"id": "a;b"}), r"runners\[\d+\]\.id"),
        (lambda d: d.update(extra=1), r"\(top level\): Additional properties .*remove it"),
        (lambda d: d["run"].update(warmup=3), r"run: Additional properties .*'warmup'"),
        (lambda d: d["inputs"].update(low=5.0, high=-5.0), r"low \(5\.0\) must be below high"),
        (lambda d: d["inputs"].update(low=float("nan")), r"inputs\.low: nan is not finite"),
        (lambda d: d["inputs"].update(count=10), r"inputs\.count: 10 samples for 100000 calls"),
        (lambda d: d["runners"][-1].update(grad_mode="inference"), r"cpp-raw uses no libtorch"),
        (lambda d: d["run"].update(calls=1500), r"blocks of 1000"),
        (lambda d: d["model"].update(layers=[1, 4, 1]), r"needs at least 2 inputs"),
    ],
)
def test_bad_values_are_refused(suite_dict: dict[str, Any], mutate: Any, pattern: str) -> None:
    mutate(suite_dict)
    with pytest.raises(UserError, match=pattern) as info:
        parse_suite(suite_dict, "my.toml")
    assert str(info.value).startswith("my.toml: ")
    assert "\n" not in str(info.value)


def test_overrides(suite_dict: dict[str, Any]) -> None:
    s = parse_suite(suite_dict, "x.toml")
    o = with_overrides(s, calls=1_000_000, repeats=2, only="cpp-api,cpp-raw")
    assert (o.run.calls, o.inputs.count, o.run.repeats) == (1_000_000, 1_000_000, 2)
    assert [c.id for c in o.runners] == ["cpp-api", "cpp-raw"]
    assert s.run.calls == 100_000  # the suite itself is unchanged
    with pytest.raises(UserError, match="--only nope: not a runner of suite 'default'"):
        with_overrides(s, only="nope")
    with pytest.raises(UserError, match="--calls 0: out of range"):
        with_overrides(s, calls=0)
    with pytest.raises(UserError, match="multiple of 1000"):
        with_overrides(s, calls=1234)
    assert with_overrides(s, calls=1234, only="cpp-api").run.calls == 1234


def test_one_runner_under_several_names(suite_dict: dict[str, Any]) -> None:
    suite_dict["runners"] = [
        {"id": "python-eager"},
        {"id": "python-eager", "name": "python-eager-inference", "grad_mode": "inference"},
    ]
    s = parse_suite(suite_dict, "x.toml")
    assert [(c.name, c.id, c.grad_mode) for c in s.runners] == [
        ("python-eager", "python-eager", "default"),
        ("python-eager-inference", "python-eager", "inference"),
    ]
    assert [c.name for c in with_overrides(s, only="python-eager-inference").runners] == ["python-eager-inference"]
    suite_dict["runners"][1].pop("name")
    with pytest.raises(UserError, match=r"listed twice.*own `name`"):
        parse_suite(suite_dict, "x.toml")
