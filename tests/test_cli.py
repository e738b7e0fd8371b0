"""The command line: end to end in a subprocess, model sources, output files, error paths."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import parewire
from parewire import cli

from _helpers import bits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "parewire", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def expected_small_cnn(seed, **kwargs):
    torch.manual_seed(seed)  # the command line seeds the model's construction too
    model = cli.small_cnn()
    report = parewire.rewire_model(model, seed=seed, **kwargs)
    return model.state_dict(), report


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("parewire: error: ") and "Traceback" not in err
    return lines[0]


def test_end_to_end_in_a_subprocess_writes_every_output(tmp_path):
    save, js, png = tmp_path / "w.pt", tmp_path / "r.json", tmp_path / "r.png"
    out = run_cli("small_cnn", "--init", "orthogonal", "--stabilize", "2", "--seed", "3", "--workers", "2",
                  "--save", str(save), "--json", str(js), "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.strip().splitlines()
    assert lines[0] == (f"PA rewiring of small_cnn (sampler={parewire.model.DEFAULT_SAMPLER}, seed=3, "
                        "init=orthogonal, stabilize=2, workers=2)")
    assert lines[-1].startswith("small_cnn: rewired 5 of 10 parameters (128,352 weights) in ")
    assert "mean strength-variance reduction" in lines[-1] and lines[-1].endswith(" s in all")

    expected, report = expected_small_cnn(3, init="orthogonal", stabilize=2)
    saved = torch.load(save, weights_only=True)
    assert saved.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(bits(saved[k]), bits(expected[k]), err_msg=k)
    for r in report.rewired:
        assert any(line.startswith(r.name + " ") and f"{r.after.in_var:.4g}" in line for line in lines)

    data = json.loads(js.read_text())
    assert data["model"] == "small_cnn" and data["seed"] == 3 and data["init"] == "orthogonal"
    assert [r["name"] for r in data["records"] if r["skipped"] is None] == [r.name for r in report.rewired]
    assert [r["after"]["in_var"] for r in data["records"] if r["skipped"] is None] == [
        r.after.in_var for r in report.rewired]

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mpl_image = pytest.importorskip("matplotlib.image")
    assert mpl_image.imread(png).ndim == 3


def test_no_model_runs_the_embedded_default_and_prints_the_report():
    out = run_cli()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    try:
        import torchvision  # noqa: F401

        name, n, total = "resnet18", 21, 22
    except ImportError:
        name, n, total = "small_cnn", 5, 10
    assert lines[0].startswith(f"PA rewiring of {name} (sampler={parewire.model.DEFAULT_SAMPLER}, seed=0")
    assert lines[1].split() == ["parameter", "shape", "in-var", "before", "->", "after", "out-var", "before",
                                "->", "after", "reduction", "time"]
    assert len(lines) == 2 + n + 2  # header, table, skipped line, summary
    assert lines[-1].startswith(f"{name}: rewired {n} of {total} parameters")


def test_an_error_in_a_subprocess_is_one_line_without_traceback():
    out = run_cli("/nonexistent_dir_xyz/weights.pt")
    assert out.returncode == 1 and out.stdout == ""
    assert one_error_line(out.stderr) == "parewire: error: no such file: /nonexistent_dir_xyz/weights.pt"


def test_a_state_dict_file_is_rewired_and_saved_with_everything_else_kept(tmp_path, capsys):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))
    src, dst, js = tmp_path / "in.pth", tmp_path / "out.pt", tmp_path / "r.json"
    torch.save({"epoch": 7, "state_dict": model.state_dict()}, src)  # a wrapped checkpoint
    assert cli.main([str(src), "--seed", "5", "--save", str(dst), "--json", str(js), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    saved = torch.load(dst, weights_only=True)
    assert saved["epoch"] == 7
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    report = parewire.rewire_model(expected, seed=5)
    assert [r.name for r in report.rewired] == ["0.weight", "3.weight"]
    for k, v in expected.items():
        np.testing.assert_array_equal(bits(saved["state_dict"][k]), bits(v), err_msg=k)
    assert not torch.equal(saved["state_dict"]["0.weight"], model.state_dict()["0.weight"])
    assert json.loads(js.read_text())["model"] == "in.pth"


def test_a_factory_path_and_a_torchvision_name(tmp_path, capsys):
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4))\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["mymodels:build", "--seed", "2", "--sampler", "fast"]) == 0
    finally:
        os.chdir(cwd)
        sys.modules.pop("mymodels", None)
    out = capsys.readouterr().out
    assert "PA rewiring of mymodels:build (sampler=fast, seed=2" in out
    assert "mymodels:build: rewired 2 of 4 parameters (50 weights)" in out

    tv = pytest.importorskip("torchvision")
    js = tmp_path / "m.json"
    assert cli.main(["mobilenet_v3_small", "--sampler", "fast", "--json", str(js), "--quiet"]) == 0
    data = json.loads(js.read_text())
    layers = [m for m in tv.models.mobilenet_v3_small().modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert data["model"] == "mobilenet_v3_small" and data["rewired"] == len(layers) > 50


@pytest.mark.parametrize("args,code,message", [
    (["resnet9000"], 1, "unknown model 'resnet9000': "),
    (["missing.pt"], 1, "no such file: missing.pt"),
    (["nosuchmodule_xyz:build"], 1, "cannot import 'nosuchmodule_xyz'"),
    (["parewire.cli:nothing_here"], 1, "has no attribute 'nothing_here'"),
    (["os:getcwd"], 1, "factory 'os:getcwd' returned str, not an nn.Module"),
    (["small_cnn", "--stabilize", "3"], 1, "--stabilize 3 needs --init NAME"),
    (["small_cnn", "--init", "glorot"], 2, "argument --init: invalid choice: 'glorot'"),
    (["small_cnn", "--sampler", "slow"], 2, "argument --sampler: invalid choice: 'slow'"),
    (["small_cnn", "--seed", "-1"], 2, "argument --seed: expected a non-negative integer, got -1"),
    (["small_cnn", "--workers", "0"], 2, "argument --workers: expected a positive integer, got 0"),
    (["small_cnn", "--stabilize", "x"], 2, "argument --stabilize: expected a non-negative integer, got 'x'"),
    (["small_cnn", "--json", "/nonexistent_dir_xyz/r.json"], 1, "--json /nonexistent_dir_xyz/r.json: directory"),
    (["small_cnn", "--bogus"], 2, "unrecognized arguments: --bogus"),
])
def test_error_paths_exit_non_zero_with_one_clear_line(args, code, message, capsys):
    assert exit_code(args) == code
    assert message in one_error_line(capsys.readouterr().err)


def exit_code(args):
    """main()'s return value, or the status argparse exits with."""
    try:
        return cli.main(args)
    except SystemExit as e:
        return e.code


def test_close_torchvision_names_are_suggested(capsys):
    pytest.importorskip("torchvision")
    assert cli.main(["resnet9000"]) == 1
    assert "not a torchvision model name (did you mean resnet" in one_error_line(capsys.readouterr().err)


def test_without_torchvision_the_default_is_the_built_in_cnn(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    assert cli.main(["--sampler", "fast"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PA rewiring of small_cnn (sampler=fast, seed=0")
    assert out[-1].startswith("small_cnn: rewired 5 of 10 parameters (128,352 weights)")
    assert cli.main(["resnet18"]) == 1
    assert "torchvision is not installed" in one_error_line(capsys.readouterr().err)


def test_unreadable_and_non_state_dict_files(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    assert cli.main([str(garbage)]) == 1
    assert "cannot read a state_dict from" in one_error_line(capsys.readouterr().err)
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    assert cli.main([str(listing)]) == 1
    assert "does not hold a state_dict (a dict of tensors), found list" in one_error_line(capsys.readouterr().err)


def test_plot_without_matplotlib_fails_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "w.pt"
    assert cli.main(["small_cnn", "--plot", str(tmp_path / "p.png"), "--save", str(out)]) == 1
    assert "--plot needs matplotlib" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_help_and_version(capsys):
    assert exit_code(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"parewire {parewire.__version__}"
    assert exit_code(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in ("--init", "--stabilize", "--seed", "--sampler", "--workers", "--save", "--json", "--plot", "--quiet"):
        assert flag in text
