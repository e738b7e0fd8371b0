"""Command line: ``parewire`` / ``python -m parewire``.

Rewires a model's Linear and Conv weights by preferential attachment and
prints each parameter's strength variance before -> after and a summary.

MODEL is small_cnn (built in), a torchvision model name (resnet18,
vit_b_16, ...), a module:callable factory returning an nn.Module, or a
checkpoint file written by torch.save holding a state_dict (every floating
tensor with >= 2 dimensions is rewired, or those --layers picks). Names
come first: MODEL is a file when it has a path separator or ends in
.pt/.pth, or when it is no model name (write ./small_cnn for a file of that
name). Without MODEL it rewires ResNet-18 (or small_cnn when torchvision is
not installed). Errors exit with status 1 (2 for bad flags) and one line on
stderr.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any, Callable, NoReturn, cast

import torch
from torch import nn

from . import __version__, functional
from .model import DEFAULT_SAMPLER, INITIALIZERS, rewire_model

__all__ = ["main", "small_cnn", "load_model"]

STATE_DICT_SUFFIXES = (".pt", ".pth")
# Checkpoints often wrap the state_dict; these keys are looked into, at the top and one level down.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model_state", "model")
# torch.manual_seed takes 64 bits; --seed takes any non-negative int, as numpy does.
_TORCH_SEED_MODULUS = 1 << 64


class CliError(Exception):
    """A problem worth one line on stderr and a non-zero exit status."""


def small_cnn() -> nn.Module:
    """The built-in default when torchvision is missing: a small CIFAR-style CNN."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 256),
        nn.ReLU(),
        nn.Linear(256, 10),
    )


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError:
        return None
    return torchvision


def _torchvision_names() -> list[str]:
    tv = _torchvision()
    if tv is None:
        return []
    models = tv.models
    if hasattr(models, "list_models"):
        return list(models.list_models())
    return [n for n in dir(models) if n.islower() and not n.startswith("_") and callable(getattr(models, n))]


def default_model() -> tuple[str, nn.Module]:
    tv = _torchvision()
    if tv is None:
        return "small_cnn", small_cnn()
    return "resnet18", tv.models.resnet18(weights=None)


def _torchvision_model(name: str) -> nn.Module:
    tv = _torchvision()
    if tv is None:
        raise CliError(
            f"unknown model {name!r}: torchvision is not installed (pip install torchvision), "
            "and it is not a module:callable factory or an existing file"
        )
    names = _torchvision_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = (
            f" (did you mean {', '.join(close)}?)"
            if close
            else " (e.g. resnet18, resnet50, vit_b_16, mobilenet_v3_small)"
        )
        raise CliError(
            f"unknown model {name!r}: not a torchvision model name{hint}, a module:callable factory or an existing file"
        )
    models = tv.models
    builder = models.get_model_builder(name) if hasattr(models, "get_model_builder") else getattr(models, name)
    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None  # detection models would otherwise download a backbone
    model: nn.Module = builder(**kwargs)
    return model


def _factory_model(spec: str) -> nn.Module:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise CliError(f"bad factory {spec!r}: expected module:callable, e.g. mypackage.models:build")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`, find modules next to the user
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise CliError(f"cannot import {module_name!r} for factory {spec!r}: {e}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"{module_name!r} has no attribute {attr!r} (factory {spec!r})") from None
    if not callable(obj):
        raise CliError(f"factory {spec!r} is not callable")
    model = obj()
    if not isinstance(model, nn.Module):
        raise CliError(f"factory {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


# -- checkpoint files -----------------------------------------------------------


def _check_torch_save_file(path: str) -> None:
    """Refuse what cannot be a torch.save file before torch.load says something cryptic."""
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory, not a file written by torch.save")
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise CliError(f"{path} is empty, not a file written by torch.save")
    # torch.save writes a zip archive (torch >= 1.6) or, in the legacy format, a pickle.
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CliError(f"{path} is not a torch.save file (neither a zip archive nor a pickle): it starts with {head!r}")


def _refused_global_hint(text: str) -> str | None:
    """What to do about a class that weights_only=True refused, from torch's message."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found is None:
        return None
    name = found.group(1)
    safe = "(parewire loads with weights_only=True, which runs no code from the file)"
    if name.endswith(("UninitializedParameter", "UninitializedBuffer")):
        return (
            f"it holds uninitialised (lazy) parameters ({name}), which have no values; "
            "run one forward pass before saving the state_dict"
        )
    module_name, _, attr = name.rpartition(".")
    cls = getattr(sys.modules.get(module_name), attr, None)  # only modules already imported: no code runs
    if name.startswith("torch.nn.modules.") or (isinstance(cls, type) and issubclass(cls, nn.Module)):
        return (
            f"it holds a whole pickled model ({name}, from torch.save(model)) {safe}; "
            "save model.state_dict() instead, or rewire it in Python: "
            "parewire.rewire_model(torch.load(path, weights_only=False)) if you trust the file"
        )
    return f"it holds a Python object of type {name} {safe}; save the state_dict alone"


def _has_tensors(m: Any) -> bool:
    return isinstance(m, Mapping) and any(isinstance(v, torch.Tensor) for v in m.values())


def _find_state_dict(obj: Any, path: str) -> Mapping[str, Any]:
    """The mapping of tensors in a checkpoint: the object itself, under a known key
    (at the top or one level down), or the one mapping of tensors one level down."""
    if _has_tensors(obj):
        return cast("Mapping[str, Any]", obj)
    if isinstance(obj, Mapping):
        for outer in [obj] + [v for v in obj.values() if isinstance(v, Mapping)]:
            for key in WRAPPER_KEYS:
                if _has_tensors(outer.get(key)):
                    return cast("Mapping[str, Any]", outer[key])
        found = [k for k, v in obj.items() if _has_tensors(v)]
        if len(found) == 1:
            return cast("Mapping[str, Any]", obj[found[0]])
        if found:
            raise CliError(
                f"{path} holds several state_dicts (under {', '.join(map(repr, found))}); "
                f"save the one to rewire alone, or under one of the keys {', '.join(WRAPPER_KEYS)}"
            )
    kind = f"a dict with keys {', '.join(map(repr, list(obj)[:6]))}" if isinstance(obj, Mapping) else type(obj).__name__
    raise CliError(
        f"{path} does not hold a state_dict (a dict of tensors, alone or under one of the keys "
        f"{', '.join(WRAPPER_KEYS)}); found {kind}"
    )


def _state_dict_file(path: str) -> tuple[Any, Mapping[str, Any]]:
    """(the loaded object, the mapping of tensors inside it)."""
    _check_torch_save_file(path)
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch without weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch.load raises many types, with multi-line messages
        text = str(e).strip()
        why = _refused_global_hint(text)
        if why is None and "Weights only load failed" in text:
            why = (
                "it holds objects other than tensors and plain containers (parewire loads with "
                "weights_only=True, which runs no code from the file); save the state_dict alone"
            )
        if why is None:
            why = (text.splitlines() or [type(e).__name__])[0]
        raise CliError(f"cannot read a state_dict from {path}: {why}") from None
    return obj, _find_state_dict(obj, path)


# -- MODEL ----------------------------------------------------------------------


def _looks_like_path(spec: str) -> bool:
    separators = [os.sep] + ([os.altsep] if os.altsep else [])
    return any(sep in spec for sep in separators) or spec.lower().endswith(STATE_DICT_SUFFIXES)


def model_kind(spec: str) -> str:
    """``"file"``, ``"small_cnn"``, ``"factory"`` or ``"torchvision"``: names come before files.

    A path separator or a .pt/.pth suffix makes a file; then the built-in
    ``small_cnn``, a ``module:callable`` factory and torchvision's model
    names; anything else is a file if it exists (so a file or folder named
    ``small_cnn`` in the working directory does not shadow the built-in:
    ``./small_cnn`` reads it).
    """
    if _looks_like_path(spec):
        return "file"
    if spec == "small_cnn":
        return "small_cnn"
    if ":" in spec:
        return "factory"
    if spec in _torchvision_names() or not os.path.exists(spec):
        return "torchvision"
    return "file"


def load_model(spec: str | None) -> tuple[str, nn.Module | Mapping[str, Any], Any]:
    """``(display name, model or state_dict, what --save writes)`` for a MODEL argument."""
    if spec is None:
        name, model = default_model()
        return name, model, None
    kind = model_kind(spec)
    if kind == "file":
        obj, state = _state_dict_file(spec)
        return os.path.basename(spec), state, obj
    if kind == "small_cnn":
        return spec, small_cnn(), None
    if kind == "factory":
        return spec, _factory_model(spec), None
    return spec, _torchvision_model(spec), None


# -- output files ---------------------------------------------------------------


class _Output:
    """A file written whole or not at all.

    The temporary file is created in the destination's folder when the
    command starts, so a folder that cannot be written fails before any work;
    at the end it is filled, fsync'ed and renamed over the destination
    (``os.replace``), so a full disk or an interrupt leaves the destination as
    it was.  The temporary file is removed on any failure.
    """

    def __init__(self, path: str, flag: str) -> None:
        self.path, self.flag, self.tmp = path, flag, None
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise CliError(f"{flag} {path}: directory {folder} does not exist")
        if os.path.isdir(path):
            raise CliError(f"{flag} {path}: is a directory")
        stem, ext = os.path.splitext(os.path.basename(path))
        try:  # the suffix stays last, so the format of --plot still follows it
            fd, self.tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".partial{ext}", dir=folder)
        except OSError as e:
            raise CliError(f"{flag} {path}: cannot write in {folder}: {e.strerror or e}") from None
        os.close(fd)
        self.folder = folder

    def commit(self, fill: Callable[[str], Any]) -> None:
        """``fill(temporary path)``, then move the finished file into place."""
        assert self.tmp is not None
        try:
            mode = stat.S_IMODE(os.stat(self.path).st_mode)
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        try:
            fill(self.tmp)
            with open(self.tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(self.tmp, mode)
            os.replace(self.tmp, self.path)
        except Exception as e:
            self.discard()
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CliError(
                f"{self.flag} {self.path}: writing failed ({first}); {self.path} was left as it was"
            ) from None
        self.tmp = None
        try:  # make the rename itself durable
            fd = os.open(self.folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def discard(self) -> None:
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass
            self.tmp = None


def _write_text(text: str) -> Callable[[str], None]:
    def fill(path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")

    return fill


def _lazy_entries(state: Mapping[str, Any]) -> list[str]:
    lazy = (nn.parameter.UninitializedParameter, nn.parameter.UninitializedBuffer)
    return [k for k, v in state.items() if isinstance(v, lazy)]


# -- arguments ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _non_negative(text: str) -> int:
    value = _integer(text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _workers(text: str) -> int:
    what = "a number of threads >= 1 (leave --workers out to use every available CPU)"
    value = _integer(text, what)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def _patterns(values: list[str] | None) -> list[str] | None:
    """Repeated flags and comma-separated lists (parameter names have no commas)."""
    if values is None:
        return None
    return [p for v in values for p in (part.strip() for part in v.split(",")) if p]


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="parewire", description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help="small_cnn, a torchvision model name, a module:callable factory, or a torch.save "
        "checkpoint file (default: resnet18, or small_cnn without torchvision)",
    )
    p.add_argument(
        "--init",
        metavar="NAME",
        choices=sorted(INITIALIZERS),
        help=f"re-initialise each weight first with torch.nn.init: {', '.join(sorted(INITIALIZERS))}",
    )
    p.add_argument(
        "--stabilize",
        metavar="K",
        type=_non_negative,
        default=0,
        help="keep the best of K draws of --init (lowest strength variance) before rewiring",
    )
    p.add_argument(
        "--seed",
        metavar="N",
        type=_non_negative,
        default=0,
        help="seed of the rewiring, any non-negative integer (default 0); the model is built "
        "after torch.manual_seed(N mod 2**64)",
    )
    p.add_argument(
        "--sampler",
        metavar="NAME",
        choices=sorted(functional.SAMPLERS),
        default=DEFAULT_SAMPLER,
        help=f"{' or '.join(sorted(functional.SAMPLERS))} (default {DEFAULT_SAMPLER})",
    )
    p.add_argument(
        "--layers",
        metavar="PATTERN",
        action="append",
        help="rewire only parameters whose names match (fnmatch, e.g. 'layer4.*'); "
        "repeat it or separate patterns by commas",
    )
    p.add_argument(
        "--exclude",
        metavar="PATTERN",
        action="append",
        help="leave parameters whose names match alone (fnmatch); repeat it or use commas",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=_workers,
        default=None,
        help="threads, >= 1 (default: the CPUs available); results do not depend on it",
    )
    p.add_argument(
        "--save",
        metavar="PATH",
        help="write the rewired state_dict (torch.save; the whole checkpoint for a checkpoint "
        "file), atomically: PATH is replaced only once the new file is complete",
    )
    p.add_argument("--json", metavar="PATH", help="write the report as JSON ('-': to stdout, the table to stderr)")
    p.add_argument(
        "--plot",
        metavar="PATH",
        help="write a figure of strengths before vs after; the format follows the suffix (.png, .svg, .pdf)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--version", action="version", version=f"parewire {__version__}")
    return p


# -- the command ----------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Check everything that can be checked, then build, rewire, write."""
    if args.stabilize and args.init is None:
        raise CliError(f"--stabilize {args.stabilize} needs --init NAME to draw candidates from")
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CliError("--plot needs matplotlib, which is not installed: pip install matplotlib") from None
        from ._figure import figure_format

        try:
            figure_format(args.plot, "--plot")
        except ValueError as e:
            raise CliError(str(e)) from None
    json_to_stdout = args.json == "-"
    outputs: dict[str, _Output] = {}
    try:
        for flag, path in (
            ("--save", args.save),
            ("--json", None if json_to_stdout else args.json),
            ("--plot", args.plot),
        ):
            if path is not None:
                outputs[flag] = _Output(path, flag)
        return _rewire_and_write(args, outputs, json_to_stdout)
    finally:
        for out in outputs.values():
            out.discard()


def _rewire_and_write(args: argparse.Namespace, outputs: dict[str, _Output], json_to_stdout: bool) -> int:
    t0 = time.perf_counter()
    torch.manual_seed(args.seed % _TORCH_SEED_MODULUS)  # the model's own initialisation is reproducible too
    name, model, saved = load_model(args.model)
    if not args.quiet and args.model is not None and os.path.exists(args.model) and saved is None:
        print(
            f"parewire: note: {args.model} is taken as a model name; write ./{args.model} for the file", file=sys.stderr
        )
    if "--save" in outputs and isinstance(model, nn.Module):
        lazy = _lazy_entries(model.state_dict())
        if lazy:
            raise CliError(
                f"--save: {', '.join(lazy[:3])}{', ...' if len(lazy) > 3 else ''} are uninitialised "
                "(lazy) and a state_dict holding them cannot be loaded back; run one forward pass in "
                "the factory so they get their shapes, or leave --save out"
            )
    report = rewire_model(
        model,
        init=args.init,
        stabilize=args.stabilize,
        seed=args.seed,
        sampler=args.sampler,
        layers=_patterns(args.layers),
        exclude=_patterns(args.exclude),
        workers=args.workers,
        progress=not args.quiet and sys.stderr.isatty(),
        name=name,
    )
    if "--save" in outputs:
        to_save = saved if saved is not None else cast(nn.Module, model).state_dict()
        outputs["--save"].commit(lambda tmp: torch.save(to_save, tmp))
    if "--json" in outputs or json_to_stdout:
        text = report.to_json()
        if json_to_stdout:
            print(text)
        else:
            outputs["--json"].commit(_write_text(text))
    if "--plot" in outputs:
        outputs["--plot"].commit(lambda tmp: report.plot(tmp))
    if not args.quiet:
        table = sys.stderr if json_to_stdout else sys.stdout
        print(report.table(), file=table)
        print(report.summary() + f"; {time.perf_counter() - t0:.2f} s in all", file=table)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``parewire`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("parewire: interrupted", file=sys.stderr)
        return 130
    except CliError as e:
        print(f"parewire: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # anything else still gets one line, never a traceback
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"parewire: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
