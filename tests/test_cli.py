"""The command line: end to end in a subprocess, model sources, output files, error paths."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from _helpers import bits
from torch import nn

import parewire
from parewire import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "parewire", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


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
    out = run_cli(
        "small_cnn",
        "--init",
        "orthogonal",
        "--stabilize",
        "2",
        "--seed",
        "3",
        "--workers",
        "2",
        "--save",
        str(save),
        "--json",
        str(js),
        "--plot",
        str(png),
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.strip().splitlines()
    assert lines[0] == (
        f"PA rewiring of small_cnn (sampler={parewire.model.DEFAULT_SAMPLER}, seed=3, "
        "init=orthogonal, stabilize=2, workers=2)"
    )
    assert lines[-1].startswith("small_cnn: rewired 5 of 5 parameters (128,352 weights) in ")
    assert "strength-variance reduction" in lines[-1] and "weighted by weights" in lines[-1]
    assert lines[-1].endswith(" s in all")

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
        r.after.in_var for r in report.rewired
    ]

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mpl_image = pytest.importorskip("matplotlib.image")
    assert mpl_image.imread(png).ndim == 3


def test_no_model_runs_the_embedded_default_and_prints_the_report():
    out = run_cli()
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    try:
        import torchvision  # noqa: F401

        name, n, total = "resnet18", 21, 21
    except ImportError:
        name, n, total = "small_cnn", 5, 5
    assert lines[0].startswith(f"PA rewiring of {name} (sampler={parewire.model.DEFAULT_SAMPLER}, seed=0")
    assert lines[1].split() == [
        "parameter",
        "shape",
        "in-var",
        "before",
        "->",
        "after",
        "out-var",
        "before",
        "->",
        "after",
        "reduction",
        "time",
    ]
    assert len(lines) == 2 + n + 2  # header, table, the headline's definition, summary
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
        "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Linear(6, 5), nn.Linear(5, 4))\n"
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["mymodels:build", "--seed", "2", "--sampler", "fast"]) == 0
    finally:
        os.chdir(cwd)
        sys.modules.pop("mymodels", None)
    out = capsys.readouterr().out
    assert "PA rewiring of mymodels:build (sampler=fast, seed=2" in out
    assert "mymodels:build: rewired 2 of 2 parameters (50 weights)" in out

    tv = pytest.importorskip("torchvision")
    js = tmp_path / "m.json"
    assert cli.main(["mobilenet_v3_small", "--sampler", "fast", "--json", str(js), "--quiet"]) == 0
    data = json.loads(js.read_text())
    layers = [m for m in tv.models.mobilenet_v3_small().modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert data["model"] == "mobilenet_v3_small" and data["rewired"] == len(layers) > 50


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["resnet9000"], 1, "unknown model 'resnet9000': "),
        (["missing.pt"], 1, "no such file: missing.pt"),
        (["nosuchmodule_xyz:build"], 1, "cannot import 'nosuchmodule_xyz'"),
        (["parewire.cli:nothing_here"], 1, "has no attribute 'nothing_here'"),
        (["os:getcwd"], 1, "factory 'os:getcwd' returned str, not an nn.Module"),
        (["small_cnn", "--stabilize", "3"], 1, "--stabilize 3 needs --init NAME"),
        (["small_cnn", "--init", "glorot"], 2, "argument --init: invalid choice: 'glorot'"),
        (["small_cnn", "--sampler", "slow"], 2, "argument --sampler: invalid choice: 'slow'"),
        (["small_cnn", "--seed", "-1"], 2, "argument --seed: expected a non-negative integer, got -1"),
        (
            ["small_cnn", "--workers", "0"],
            2,
            (
                "argument --workers: expected a number of threads >= 1 (leave --workers "
                "out to use every available CPU), got 0"
            ),
        ),
        (["small_cnn", "--workers", "-1"], 2, "argument --workers: expected a number of threads >= 1"),
        (["small_cnn", "--stabilize", "x"], 2, "argument --stabilize: expected a non-negative integer, got 'x'"),
        (["small_cnn", "--json", "/nonexistent_dir_xyz/r.json"], 1, "--json /nonexistent_dir_xyz/r.json: directory"),
        (["small_cnn", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ],
)
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
    assert out[-1].startswith("small_cnn: rewired 5 of 5 parameters (128,352 weights)")
    assert cli.main(["resnet18"]) == 1
    assert "torchvision is not installed" in one_error_line(capsys.readouterr().err)


def test_unreadable_and_non_state_dict_files(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    assert cli.main([str(garbage)]) == 1
    assert "garbage.pt is not a torch.save file" in one_error_line(capsys.readouterr().err)
    truncated = tmp_path / "truncated.pt"
    torch.save({"w": torch.randn(100, 100)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:1000])  # a zip header, then nothing
    assert cli.main([str(truncated)]) == 1
    assert f"cannot read a state_dict from {truncated}: " in one_error_line(capsys.readouterr().err)
    listing = tmp_path / "list.pt"
    torch.save([1, 2, 3], listing)
    assert cli.main([str(listing)]) == 1
    assert (
        "does not hold a state_dict (a dict of tensors, alone or under one of the keys state_dict, "
        "model_state_dict, model_state, model); found list" in one_error_line(capsys.readouterr().err)
    )
    numbers = tmp_path / "numbers.pt"
    torch.save({"epoch": 3, "loss": 0.5}, numbers)
    assert cli.main([str(numbers)]) == 1
    assert "found a dict with keys 'epoch', 'loss'" in one_error_line(capsys.readouterr().err)


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
    for flag in (
        "--init",
        "--stabilize",
        "--seed",
        "--sampler",
        "--layers",
        "--exclude",
        "--workers",
        "--save",
        "--json",
        "--plot",
        "--quiet",
    ):
        assert flag in text


# -- issue 13: stdout for JSON, selection, checkpoints -------------------------------------------


def test_json_dash_prints_only_json_on_stdout_and_the_table_on_stderr(capsys):
    assert cli.main(["small_cnn", "--seed", "4", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)  # the whole of stdout
    _, report = expected_small_cnn(4)
    assert data["model"] == "small_cnn" and data["rewired"] == len(report.rewired) == 5
    assert [r["seed"] for r in data["records"] if r["status"] == "rewired"] == [r.seed for r in report.rewired]
    assert err.splitlines()[0].startswith("PA rewiring of small_cnn") and "strength-variance reduction" in err
    assert not os.path.exists("-")
    assert cli.main(["small_cnn", "--json", "-", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["model"] == "small_cnn" and err == ""


def test_layers_and_exclude_select_as_the_api_does(tmp_path, capsys):
    dst = tmp_path / "w.pt"
    assert (
        cli.main(
            [
                "small_cnn",
                "--seed",
                "6",
                "--layers",
                "0.*,1*",
                "--layers",
                "6.weight",
                "--exclude",
                "12.*",
                "--save",
                str(dst),
                "--quiet",
            ]
        )
        == 0
    )
    torch.manual_seed(6)
    model = cli.small_cnn()
    report = parewire.rewire_model(model, seed=6, layers=["0.*", "1*", "6.weight"], exclude="12.*")
    assert [r.name for r in report.rewired] == ["0.weight", "6.weight", "10.weight"]
    saved = torch.load(dst, weights_only=True)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(bits(saved[k]), bits(v), err_msg=k)

    src = tmp_path / "sd.pt"  # a state_dict file: the same patterns
    torch.manual_seed(0)
    torch.save(cli.small_cnn().state_dict(), src)
    js = tmp_path / "r.json"
    assert cli.main([str(src), "--exclude", "*.bias", "--exclude", "3.*", "--json", str(js), "--quiet"]) == 0
    data = json.loads(js.read_text())
    assert [r["name"] for r in data["records"] if r["status"] == "rewired"] == [
        "0.weight",
        "6.weight",
        "10.weight",
        "12.weight",
    ]


def _checkpoint(state_dict):
    return [
        ("plain", state_dict, ()),
        ("state_dict", {"epoch": 3, "state_dict": state_dict}, ("state_dict",)),
        ("model_state_dict", {"model_state_dict": state_dict, "optimizer": {"state": {}}}, ("model_state_dict",)),
        ("model_state", {"model_state": state_dict, "step": 10}, ("model_state",)),
        ("model", {"model": state_dict}, ("model",)),
        ("nested known key", {"checkpoint": {"model": state_dict}, "epoch": 1}, ("checkpoint", "model")),
        ("one mapping one level down", {"ema": state_dict, "epoch": 1}, ("ema",)),
    ]


@pytest.mark.parametrize("case", range(7), ids=[c[0] for c in _checkpoint({})])
def test_checkpoints_are_found_under_the_usual_keys_and_written_back_whole(case, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    parewire.rewire_model(expected, seed=1)
    _, obj, keys = _checkpoint({k: v.clone() for k, v in model.state_dict().items()})[case]
    src, dst = tmp_path / "ck.pt", tmp_path / "out.pt"
    torch.save(obj, src)
    assert cli.main([str(src), "--seed", "1", "--save", str(dst), "--quiet"]) == 0
    saved = torch.load(dst, weights_only=True)
    inner = saved
    for key in keys:
        inner = inner[key]
    assert inner.keys() == expected.keys()
    for k in expected:
        np.testing.assert_array_equal(bits(inner[k]), bits(expected[k]), err_msg=k)
    assert saved.keys() == obj.keys()  # everything else kept


def test_several_state_dicts_and_pickled_models_get_clear_hints(tmp_path, capsys):
    torch.manual_seed(0)
    sd = nn.Linear(3, 4).state_dict()
    two = tmp_path / "two.pt"
    torch.save({"student": sd, "teacher": sd}, two)
    assert cli.main([str(two)]) == 1
    assert "holds several state_dicts (under 'student', 'teacher')" in one_error_line(capsys.readouterr().err)

    whole = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(3, 4)), whole)  # torch.save(model), not its state_dict
    assert cli.main([str(whole)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "holds a whole pickled model (torch.nn.modules.container.Sequential" in line
    assert "save model.state_dict() instead" in line and "weights_only=True" in line


def test_save_of_a_lazy_module_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "lazymodels.py").write_text(
        "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.LazyLinear(4), nn.Linear(4, 3))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "rewire_model", rewire_must_not_run)
    try:
        assert cli.main(["lazymodels:build", "--save", "w.pt"]) == 1
    finally:
        sys.modules.pop("lazymodels", None)
    line = one_error_line(capsys.readouterr().err)
    assert "--save: 0.weight, 0.bias are uninitialised (lazy)" in line and "forward pass" in line
    assert [f for f in os.listdir(tmp_path) if f not in ("lazymodels.py", "__pycache__")] == []


def rewire_must_not_run(*args, **kwargs):
    raise AssertionError("rewire_model ran although the command should have failed first")


# -- issue 11 item 3: --save is atomic -------------------------------------------------------------


FULL_DISK = """
import resource, runpy, signal, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
sys.argv = ["parewire"] + sys.argv[2:]
runpy.run_module("parewire", run_name="__main__")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_save_over_the_input_on_a_full_disk_leaves_the_input_whole(tmp_path):
    torch.manual_seed(0)
    ck = tmp_path / "ck.pt"
    torch.save(nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 256)).state_dict(), ck)
    original = ck.read_bytes()
    assert len(original) > 500_000
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "65536", "ck.pt", "--save", "ck.pt", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert one_error_line(out.stderr).startswith("parewire: error: --save ck.pt: writing failed (")
    assert "ck.pt was left as it was" in out.stderr
    assert ck.read_bytes() == original  # loadable and byte-identical
    assert os.listdir(tmp_path) == ["ck.pt"]  # no temporary file left behind
    torch.load(ck, weights_only=True)


def test_save_replaces_the_file_whole_and_keeps_its_mode(tmp_path, capsys):
    dst = tmp_path / "w.pt"
    dst.write_bytes(b"old")
    dst.chmod(0o640)
    assert cli.main(["small_cnn", "--save", str(dst), "--quiet"]) == 0
    assert oct(dst.stat().st_mode & 0o777) == oct(0o640)
    expected, _ = expected_small_cnn(0)
    assert torch.load(dst, weights_only=True).keys() == expected.keys()
    fresh = tmp_path / "fresh.pt"
    assert cli.main(["small_cnn", "--save", str(fresh), "--quiet"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert oct(fresh.stat().st_mode & 0o777) == oct(0o666 & ~umask)
    assert sorted(os.listdir(tmp_path)) == ["fresh.pt", "w.pt"]


def test_an_interrupt_leaves_outputs_as_they_were_and_no_temporary_files(tmp_path, monkeypatch, capsys):
    dst = tmp_path / "w.pt"
    dst.write_bytes(b"old")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "rewire_model", interrupted)
    assert (
        cli.main(
            ["small_cnn", "--save", str(dst), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "p.png")]
        )
        == 130
    )
    assert capsys.readouterr().err == "parewire: interrupted\n"
    assert os.listdir(tmp_path) == ["w.pt"] and dst.read_bytes() == b"old"
    assert cli.main(["resnet9000", "--save", str(dst)]) == 1  # an error after the outputs were reserved
    assert "unknown model 'resnet9000'" in one_error_line(capsys.readouterr().err)
    assert os.listdir(tmp_path) == ["w.pt"] and dst.read_bytes() == b"old"


# -- issue 11 item 7: errors -----------------------------------------------------------------------


def unwritable_folder(tmp_path):
    """A folder this process cannot create files in (as root, permission bits do not stop it:
    then a folder of sysfs, where even root cannot create files)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (str(folder), "/sys"):
        try:
            fd, name = tempfile.mkstemp(dir=candidate)
        except OSError:
            return candidate
        os.close(fd)
        os.unlink(name)
    pytest.skip("no folder here refuses new files")


def test_save_into_an_unwritable_folder_fails_before_any_work(tmp_path, monkeypatch, capsys):
    folder = unwritable_folder(tmp_path)
    monkeypatch.setattr(cli, "rewire_model", rewire_must_not_run)
    target = os.path.join(folder, "w.pt")
    assert cli.main(["small_cnn", "--save", target]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"parewire: error: --save {target}: cannot write in {folder}: ")
    assert not os.path.exists(target)


def test_seeds_beyond_64_bits_work_as_numpy_takes_them(tmp_path, capsys):
    seed = 2**64
    dst, js = tmp_path / "w.pt", tmp_path / "r.json"
    assert cli.main(["small_cnn", "--seed", str(seed), "--save", str(dst), "--json", str(js), "--quiet"]) == 0
    torch.manual_seed(seed % 2**64)  # the model is built under the seed modulo 2**64
    model = cli.small_cnn()
    report = parewire.rewire_model(model, seed=seed)
    saved = torch.load(dst, weights_only=True)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(bits(saved[k]), bits(v), err_msg=k)
    data = json.loads(js.read_text())
    assert data["seed"] == seed and [r["seed"] for r in data["records"] if r["seed"]] == list(report.seeds.values())
    assert exit_code(["small_cnn", "--seed", "-1"]) == 2


def test_a_text_file_is_not_a_torch_save_file(tmp_path, capsys):
    text = tmp_path / "text.pt"
    text.write_text("epoch 3, loss 0.25\n")
    assert cli.main([str(text)]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"parewire: error: {text} is not a torch.save file (neither a zip archive nor a pickle): "
        "it starts with b'epoch 3, loss 0.'"
    )
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert cli.main([str(empty)]) == 1
    assert f"{empty} is empty, not a file written by torch.save" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_file_or_folder_named_small_cnn_does_not_shadow_the_built_in(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if kind == "folder":
        (tmp_path / "small_cnn").mkdir()
    else:
        torch.save({"w": torch.randn(5, 6)}, tmp_path / "small_cnn")
    assert cli.main(["small_cnn", "--json", "r.json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads((tmp_path / "r.json").read_text())["rewired"] == 5  # the built-in CNN
    assert err == "parewire: note: small_cnn is taken as a model name; write ./small_cnn for the file\n"
    code = cli.main([os.path.join(".", "small_cnn"), "--json", "r.json", "--quiet"])
    if kind == "file":
        assert code == 0 and [r["name"] for r in json.loads((tmp_path / "r.json").read_text())["records"]] == ["w"]
    else:
        assert code == 1
        assert "./small_cnn is a directory, not a file written by torch.save" in capsys.readouterr().err


def test_model_names_come_before_files_and_files_need_no_suffix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.model_kind("small_cnn") == "small_cnn" and cli.model_kind("pkg.mod:build") == "factory"
    assert cli.model_kind("ck.pt") == cli.model_kind("sub/ck") == cli.model_kind("x.PTH") == "file"
    assert cli.model_kind("nothing_here") == "torchvision"  # an unknown model name, with suggestions
    torch.save({"w": torch.randn(5, 6)}, tmp_path / "weights.ckpt")
    assert cli.model_kind("weights.ckpt") == "file"
    assert cli.main(["weights.ckpt", "--quiet"]) == 0


def test_plot_format_follows_the_suffix_and_an_unknown_one_fails_first(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    svg = tmp_path / "p.svg"
    assert cli.main(["small_cnn", "--plot", str(svg), "--quiet"]) == 0
    assert "<svg" in svg.read_text()[:1000]
    monkeypatch.setattr(cli, "rewire_model", rewire_must_not_run)
    assert cli.main(["small_cnn", "--plot", str(tmp_path / "p.docx")]) == 1
    assert "--plot: cannot tell an image format from" in one_error_line(capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["p.svg"]
