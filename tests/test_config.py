"""The suite loader accepts the bundled suites and refuses bad ones with a message naming field and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import UserError
from harness.overrides import collection_with_overrides, with_overrides
from harness.paths import SUITES_DIR
from harness.runner_rows import calls_for
from harness.suite import Collection
from harness.suite_file import load_suite, parse_suite
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
    loaded = load_suite(str(path))
    suites = loaded.parts if isinstance(loaded, Collection) else (loaded,)
    assert suites and all(s.runners for s in suites)


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
        (lambda d: d["inputs"].update(count=10) or d["run"].update(batch=16),
         r"inputs\.count: 10 samples cannot fill a batch of 16"),
        (lambda d: d["run"].update(batch=0), r"run\.batch: 0 is less than the minimum of 1"),
        (lambda d: d["model"].update(kind="transformer"), r"model\.kind: .*use one of mlp, mlp_branch"),
        (lambda d: d["model"].update(kind="op_chain"), r"model\.layers: not a setting of a op_chain model"),
        (lambda d: d["model"].update(length=5), r"model\.length: not a setting of a mlp model"),
        (lambda d: d["model"].pop("layers"), r"model: a mlp model needs 'layers'"),
        (lambda d: d.update(sweep={"batch": [1, 1]}), r"sweep\.batch: .*non-unique"),
        (lambda d: d.update(sweep={"batch": [10**6]}), r"sweep\.batch\[0\]: .*maximum"),
        (lambda d: d["runners"][0].update(threads=0), r"runners\[0\]\.threads"),
        (lambda d: next(r for r in d["runners"] if r["id"] == "cpp-raw").update(grad_mode="inference"),
         r"cpp-raw uses no libtorch"),
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


def conv_suite(d: dict[str, Any]) -> dict[str, Any]:
    d["model"] = {"name": "C", "kind": "conv_bn_relu", "image": [32, 32]}
    d["inputs"]["count"] = 4
    d["runners"] = [{"id": "python-torchscript"}, {"id": "cpp-torchscript"}]
    return d


def test_model_kinds_and_shapes(suite_dict: dict[str, Any]) -> None:
    s = parse_suite(conv_suite(suite_dict), "c.toml")
    assert (s.model.sample_shape, s.model.output_shape, s.model.input_shape(1)) == ((3, 32, 32), (5, 30, 30),
                                                                                    (1, 3, 32, 32))
    assert s.inputs.count == 4 and s.inputs.fixed_count  # fewer samples than calls: the calls cycle over them
    assert with_overrides(s, calls=5000).inputs.count == 4  # a fixed count is not grown by --calls
    mlp = parse_suite({**conv_suite(suite_dict), "model": {"name": "M", "layers": [2, 4, 1]}}, "m.toml")
    assert mlp.model.input_shape(1) == (2,) and mlp.model.input_shape(8) == (8, 2)  # the seed's shape at batch 1


def test_runner_that_cannot_run_the_kind_is_refused(suite_dict: dict[str, Any]) -> None:
    d = conv_suite(suite_dict)
    d["runners"].append({"id": "cpp-api"})
    with pytest.raises(UserError, match=r"runners\[2\]\.id: cpp-api cannot run a conv_bn_relu model.*remove it"):
        parse_suite(d, "c.toml")


def test_branch_model_refuses_batches(suite_dict: dict[str, Any]) -> None:
    suite_dict["model"]["kind"] = "mlp_branch"
    suite_dict["runners"] = [{"id": "python-eager", "batch": 4}]
    with pytest.raises(UserError, match="decides its branch per call"):
        parse_suite(suite_dict, "b.toml")


def test_sweep_expands_every_runner(suite_dict: dict[str, Any]) -> None:
    suite_dict["sweep"] = {"batch": [1, 64, 4096], "threads": [1, 2]}
    suite_dict["runners"] = [{"id": "cpp-api"}, {"id": "cpp-raw"}]
    suite_dict["run"]["calls"] = 20_000
    s = parse_suite(suite_dict, "s.toml")
    names = [c.name for c in s.runners]
    assert names[:3] == ["cpp-api-b1-t1", "cpp-api-b1-t2", "cpp-api-b64-t1"] and len(names) == 12
    raw = {c.name: c for c in s.runners if c.id == "cpp-raw"}
    # the raw floor keeps ~1000 samples per clock read, and every count divides into whole blocks
    assert [(c.block, calls_for(s.run, c)) for c in (raw["cpp-raw-b1-t1"], raw["cpp-raw-b64-t1"],
                                                     raw["cpp-raw-b4096-t1"])] == [(1000, 20000), (16, 320), (1, 100)]
    assert {c.family for c in s.runners} == {"cpp-api", "cpp-raw"}
    suite_dict["run"]["min_batched_calls"] = 1000
    big = parse_suite(suite_dict, "s.toml")
    assert [calls_for(big.run, c) for c in big.runners if c.name.startswith("cpp-api-b") and c.threads == 1] == [
        20_000, 1000, 1000]  # 20000 // 64 = 312 and 20000 // 4096 = 4 raised to the suite's minimum
    # --only takes a family for all its rows, or single rows
    assert [c.name for c in with_overrides(s, only="cpp-raw").runners] == [n for n in names if n.startswith("cpp-raw")]
    assert [c.name for c in with_overrides(s, only="cpp-api,cpp-raw-b64-t2").runners] == [
        *(n for n in names if n.startswith("cpp-api")), "cpp-raw-b64-t2"]
    assert s.inputs.count == 4096 * 100  # enough samples for every call of every batch to differ
    assert all(calls_for(s.run, c) % c.block == 0 for c in s.runners)


def test_collection_loads_its_parts(tmp_path: Path, suite_dict: dict[str, Any]) -> None:
    recipes = load_suite("recipes")
    assert isinstance(recipes, Collection)
    assert {"op-chain", "tracing-pitfall", "cpp-tips", "mobile", "batch-sweep", "threads"} <= {
        p.name for p in recipes.parts}
    only = collection_with_overrides(recipes, repeats=1, only="cpp-api-vstack")
    assert [p.name for p in only.parts] == ["cpp-tips"] and [c.name for c in only.parts[0].runners] == [
        "cpp-api-vstack"]
    with pytest.raises(UserError, match="--only nope: not a runner of any part"):
        collection_with_overrides(recipes, only="nope")
    (tmp_path / "c.toml").write_text('name = "c"\nparts = ["missing"]\n')
    with pytest.raises(UserError, match=r"parts\[0\]: suite 'missing' not found"):
        load_suite(str(tmp_path / "c.toml"))
    (tmp_path / "d.toml").write_text('name = "d"\nparts = ["../etc/passwd"]\n')
    with pytest.raises(UserError, match=r"parts\[0\]: .*does not match"):
        load_suite(str(tmp_path / "d.toml"))
