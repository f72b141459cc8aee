"""A user's own model, end to end on models made here: a TorchScript conv net, a factory with an int64
input, a model returning a tuple and a dict, a pickle (refused), a file given the wrong shape, and the
`invoke all --model` command line. Python runners and the SKIPPED rows; C++ and Java take the same jobs in
tests/test_cpp_user_inputs.py and tests/test_java_user_inputs.py."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness.errors import UserError
from harness.paths import BUILD_DIR, ROOT
from harness.pipeline import run_suite
from harness.suite_file import load_suite, parse_suite
from harness.user_model import factory_module_name


def _suite(kind: str, path: Path | str, runners: list[str], tensors: list[dict[str, Any]] | None = None,
           calls: int = 60) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "user", "model": {"name": "Mine", "kind": kind, "path": str(path)}, "inputs": {"count": 4},
        "run": {"calls": calls, "warmup_calls": 2, "warmup_s": 0, "repeats": 1, "programs": False},
        "runners": [{"id": r} for r in runners],
    }
    if tensors is not None:
        data["inputs"]["tensors"] = tensors
    return data


def _run(data: dict[str, Any], tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    run = run_suite(parse_suite(data, str(tmp_path / "suite.toml")), tmp_path / "results", BUILD_DIR, quiet=True)
    return run, pd.read_csv(run / "results.csv").set_index("runner")


class Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class Pair(torch.nn.Module):
    """A tuple and a dict out: every output is verified, in pytree order (dict values as inserted)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        y = self.fc(x)
        return y, {"b": y.sum(-1), "a": x * 2.0}


def test_a_torchscript_conv_net_runs_and_matches(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "conv.pt"
    torch.jit.trace(Conv().eval(), torch.rand(1, 3, 16, 16)).save(str(path))
    data = _suite("torchscript", path, ["python-torchscript", "python-lite", "python-onnxruntime",
                                        "python-torchscript-frozen", "python-eager", "cpp-api"],
                  [{"shape": [1, 3, 16, 16]}])
    run, df = _run(data, tmp_path)
    for r in ("python-torchscript", "python-lite", "python-onnxruntime"):  # the file itself, and made from it
        assert df.loc[r, "status"] == "ok" and bool(df.loc[r, "outputs_ok"]), (r, df.loc[r, "message"])
    # an export that fails: the exporter's own reason in the row
    assert df.loc["python-torchscript-frozen", "status"] == "SKIPPED"
    assert "cannot export model.frozen.pt: optimize_for_inference" in df.loc["python-torchscript-frozen", "message"]
    assert df.loc["python-eager", "status"] == "SKIPPED"
    assert "Python class" in df.loc["python-eager", "message"] and "factory" in df.loc["python-eager", "message"]
    assert df.loc["cpp-api", "status"] == "SKIPPED" and "layer spec" in df.loc["cpp-api", "message"]
    suite = json.loads((run / "suite.json").read_text())
    assert suite["model"]["outputs"] == [4 * 14 * 14]  # found by calling the model once
    assert "the user's TorchScript file" in (run / "report.md").read_text()


def test_a_factory_with_an_int64_input_takes_its_example_shapes(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(textwrap.dedent('''
        import torch

        class Two(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(10, 4)
                self.fc = torch.nn.Linear(4, 4)

            def forward(self, x, ids):
                return self.fc(x) + self.embed(ids).sum(1)

        def build():
            return Two(), (torch.rand(1, 4), torch.randint(0, 10, (1, 5)))
    '''))
    data = _suite("factory", "two.py:build", ["python-eager", "python-torchscript", "python-export"])
    suite = parse_suite(data, str(tmp_path / "s.toml"))  # relative to the suite's folder
    assert [(t.dtype, t.shape) for t in suite.model.tensors] == [("float32", (1, 4)), ("int64", (1, 5))]
    assert suite.model.tensors[1].distribution == "integers" and suite.model.tensors[1].low >= 0
    run, df = _run(data, tmp_path)
    for r in ("python-eager", "python-torchscript", "python-export"):
        assert df.loc[r, "status"] == "ok" and bool(df.loc[r, "outputs_ok"]), (r, df.loc[r, "message"])
    tensors = json.loads((run / "inputs.manifest.json").read_text())["tensors"]
    assert [(t["dtype"], t["offset"]) for t in tensors] == [("float32", 0), ("int64", 64)]  # 4 x 4 floats, aligned


def test_a_factory_file_named_with_a_space_and_umlauts_gives_loadable_torchscript(tmp_path: Path) -> None:
    """The name the factory is imported under ends up in TorchScript's qualified names, which its loaders
    (Python's and C++'s share one parser) read as ASCII tokens: any file name must still load."""
    folder = tmp_path / "dir with ü"
    folder.mkdir()
    (folder / "mödel two.py").write_text(textwrap.dedent('''
        import torch

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(6, 2)

            def forward(self, x):
                return torch.tanh(self.fc(x))

        def build():
            return M()
    '''))
    data = _suite("factory", str(folder / "mödel two.py") + ":build", ["python-torchscript", "python-lite"],
                  [{"shape": [1, 6]}])
    _, df = _run(data, tmp_path)
    for r in ("python-torchscript", "python-lite"):
        assert df.loc[r, "status"] == "ok" and bool(df.loc[r, "outputs_ok"]), (r, df.loc[r, "message"])
    assert factory_module_name(folder / "mödel two.py").isidentifier()
    assert factory_module_name(folder / "mödel two.py").isascii()


def test_every_output_of_a_tuple_and_dict_is_verified(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "pair.pt"
    torch.jit.script(Pair().eval()).save(str(path))
    run, df = _run(_suite("torchscript", path, ["python-torchscript"], [{"shape": [1, 4]}]), tmp_path)
    assert df.loc["python-torchscript", "status"] == "ok" and bool(df.loc["python-torchscript", "outputs_ok"])
    assert json.loads((run / "suite.json").read_text())["model"]["outputs"] == [3, 1, 4]
    ref = np.fromfile(run / "raw" / "reference.bin", dtype="<f4").reshape(4, 8)
    manifest = json.loads((run / "inputs.manifest.json").read_text())
    kept = next(p for p in (BUILD_DIR / "inputs").glob("*/manifest.json")
                if json.loads(p.read_text()).get("sha256") == manifest["sha256"])
    x = np.fromfile(kept.parent / "inputs.bin", dtype="<f4").reshape(4, 4)
    y, d = torch.jit.load(str(path))(torch.from_numpy(x[:1]))
    assert list(d) == ["b", "a"]  # dict values are flattened in this (insertion) order
    expected = torch.cat([y.reshape(-1), d["b"].reshape(-1), d["a"].reshape(-1)]).detach().numpy()
    np.testing.assert_allclose(ref[0], expected, rtol=1e-6, atol=1e-6)


def test_a_pickled_module_is_refused_with_how_to_export(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(Conv(), path)
    with pytest.raises(UserError, match=r"torch\.save.*would unpickle.*export it instead: torch\.jit\.save"):
        parse_suite(_suite("torchscript", path, ["python-torchscript"], [{"shape": [1, 3, 8, 8]}]), "s.toml")
    legacy = tmp_path / "legacy.pt"
    torch.save(Conv(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(UserError, match="is a pickle"):
        parse_suite(_suite("pt2", legacy, ["python-aoti"], [{"shape": [1, 3, 8, 8]}]), "s.toml")


def test_a_file_given_the_wrong_shape_is_refused_before_any_run(tmp_path: Path) -> None:
    path = tmp_path / "conv.pt"
    torch.jit.trace(Conv().eval(), torch.rand(1, 3, 16, 16)).save(str(path))
    with pytest.raises(UserError) as info:
        _run(_suite("torchscript", path, ["python-torchscript"], [{"shape": [1, 5, 16, 16]}]), tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"model {path} does not run on the given inputs (float32 [1, 5, 16, 16]): ")
    assert "RuntimeError: " in message and "give the shapes and dtypes its forward takes" in message
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


class MatTimesOnes(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ torch.ones(4, 2)


@pytest.mark.parametrize("calls", [[], ["--calls", "100"]], ids=["calls-found-by-probe", "calls-given"])
def test_cli_wrong_shape_is_one_line_exit_2_and_no_run_folder(tmp_path: Path, calls: list[str]) -> None:
    """The model's own message (the last line of a TorchScript interpreter error), not a harness traceback."""
    path = tmp_path / "scripted.pt"
    torch.jit.script(MatTimesOnes()).save(str(path))
    results = tmp_path / "results"
    p = subprocess.run([sys.executable, "-m", "invoke", "all", "--model", str(path), "--input-shape", "3,5",
                        "--results", str(results), *calls], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0] == (f"error: model {path} does not run on the given inputs (float32 [3, 5]): RuntimeError: "
                        "mat1 and mat2 shapes cannot be multiplied (3x5 and 4x2): give the shapes and dtypes its "
                        "forward takes (--input-shape, --input-dtype, or [[inputs.tensors]] in a suite)")
    assert not results.exists() or not any(results.iterdir())


@pytest.mark.parametrize(("change", "message"), [
    ({"model": {"name": "M", "kind": "torchscript", "path": "a\"b.pt"}}, "model.path: .* without quotes"),
    ({"model": {"name": "M", "kind": "torchscript", "path": "/nonexistent/model.pt"}}, "does not exist"),
    ({"model": {"name": "M", "kind": "factory", "path": "net.py"}}, "is not FILE.py:FUNCTION"),
    ({"inputs": {"tensors": [{"shape": [1, 4], "dtype": "int64"}]}}, "cannot be drawn 'uniform'"),
    ({"run": {"calls": 10, "batch": 4}}, "batch 1"),
])
def test_bad_user_model_suites_are_one_line_errors(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    (tmp_path / "net.py").write_text("def build():\n    pass\n")
    scripted = tmp_path / "m.pt"
    torch.jit.script(torch.nn.Linear(4, 2)).save(str(scripted))
    data = _suite("torchscript", scripted, ["python-torchscript"], [{"shape": [1, 4]}]) | change
    with pytest.raises(UserError, match=message):
        suite = parse_suite(data, str(tmp_path / "s.toml"))
        from harness.inputs import make_tensor_inputs

        make_tensor_inputs(suite.model.tensors, 2, tmp_path / "cache")


def test_the_command_line_runs_a_model_and_keeps_its_suite(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = tmp_path / "pair.pt"
    torch.jit.script(Pair().eval()).save(str(path))
    argv = [str(ROOT / ".venv" / "bin" / "invoke"), "all", "--model", str(path), "--input-shape", "1,4",
            "--only", "python-torchscript,java-torchscript,cpp-api", "--calls", "100", "--repeats", "1",
            "--results", str(tmp_path / "res")]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    run = Path(done.stdout.strip().splitlines()[-1]).parent
    kept = tomllib.loads((run / "suite.toml").read_text())
    assert kept["model"] == {"name": "pair", "kind": "torchscript", "path": str(path)}
    assert load_suite(str(run / "suite.toml")).model.tensors[0].shape == (1, 4)  # it repeats with --suite
    df = pd.read_csv(run / "results.csv").set_index("runner")
    assert df.loc["python-torchscript", "status"] == "ok" and bool(df.loc["python-torchscript", "outputs_ok"])
    assert df.loc["cpp-api", "status"] == "SKIPPED"
    bad = subprocess.run([*argv[:4], "--input-shape", "1,x"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--input-shape '1,x' is not a shape" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    pickled = tmp_path / "pickled.pt"
    torch.save(Conv(), pickled)
    refused = subprocess.run([argv[0], "all", "--model", str(pickled), "--input-shape", "1,3,8,8"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "export it instead" in refused.stderr
    assert sys.executable  # the subprocesses ran the project's own venv


def test_an_exported_program_and_an_aoti_package_run_what_they_can(tmp_path: Path) -> None:
    """A .pt2 ExportedProgram: exported Python, and the files made from it; an AOTInductor package: only
    the AOTInductor runners, the others SKIPPED saying why."""
    torch.manual_seed(0)
    net, x = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()).eval(), (torch.rand(1, 4),)
    program = torch.export.export(net, x)
    exported = tmp_path / "net.pt2"
    torch.export.save(program, str(exported))
    made = ["python-export", "python-torchscript", "python-aoti", "python-aoti-loader", "python-onnxruntime"]
    _, df = _run(_suite("pt2", exported, [*made, "python-torchscript-scripted"], [{"shape": [1, 4]}]),
                 tmp_path / "ep")
    for r in made:  # AOTInductor compiles the program as it is: its module cannot be exported again
        assert df.loc[r, "status"] == "ok" and bool(df.loc[r, "outputs_ok"]), (r, df.loc[r, "message"])
    assert df.loc["python-torchscript-scripted", "status"] == "SKIPPED"
    assert "generated code it cannot compile" in df.loc["python-torchscript-scripted", "message"]
    package = tmp_path / "net.package.pt2"
    with torch._inductor.config.patch(compile_threads=1):
        torch._inductor.aoti_compile_and_package(program, package_path=str(package))
    data = _suite("pt2", package, ["python-aoti", "python-torchscript", "python-eager"], [{"shape": [1, 4]}])
    _, df = _run(data, tmp_path / "aoti")
    assert df.loc["python-aoti", "status"] == "ok" and bool(df.loc["python-aoti", "outputs_ok"])
    assert "AOTInductor package, compiled code" in df.loc["python-torchscript", "message"]
    assert df.loc["python-eager", "status"] == "SKIPPED"
