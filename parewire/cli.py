"""Command line: ``parewire`` / ``python -m parewire``.

Rewires a model's Linear and Conv weights by preferential attachment and
prints each parameter's strength variance before -> after and a summary.

MODEL is a torchvision model name (resnet18, vit_b_16, ...), small_cnn
(built in), a module:callable factory returning an nn.Module, or a saved
state_dict file (.pt/.pth: every floating tensor with >= 2 dimensions is
rewired). Without MODEL it rewires ResNet-18 (or small_cnn when torchvision
is not installed). Errors exit with status 1 (2 for bad flags) and one line
on stderr.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
import time
from collections.abc import Mapping
from typing import Any, List, NoReturn, Optional, Tuple, Union

import torch
from torch import nn

from . import __version__, functional
from .model import DEFAULT_SAMPLER, INITIALIZERS, rewire_model

__all__ = ["main", "small_cnn", "load_model"]

STATE_DICT_SUFFIXES = (".pt", ".pth")
# Checkpoints often wrap the state_dict; these keys are looked into.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


class CliError(Exception):
    """A problem worth one line on stderr and a non-zero exit status."""


def small_cnn() -> nn.Module:
    """The built-in default when torchvision is missing: a small CIFAR-style CNN."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 10),
    )


def _torchvision() -> Any:
    try:
        import torchvision
    except ImportError:
        return None
    return torchvision


def default_model() -> Tuple[str, nn.Module]:
    tv = _torchvision()
    if tv is None:
        return "small_cnn", small_cnn()
    return "resnet18", tv.models.resnet18(weights=None)


def _torchvision_model(name: str) -> nn.Module:
    tv = _torchvision()
    if tv is None:
        raise CliError(f"unknown model {name!r}: torchvision is not installed (pip install torchvision), "
                       "and it is not a module:callable factory or an existing .pt/.pth file")
    models = tv.models
    names = models.list_models() if hasattr(models, "list_models") else [
        n for n in dir(models) if n.islower() and not n.startswith("_") and callable(getattr(models, n))
    ]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. resnet18, resnet50, vit_b_16, mobilenet_v3_small)"
        raise CliError(f"unknown model {name!r}: not a torchvision model name{hint}, "
                       "a module:callable factory or an existing .pt/.pth file")
    builder = models.get_model_builder(name) if hasattr(models, "get_model_builder") else getattr(models, name)
    import inspect

    kwargs = {"weights": None}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None  # detection models would otherwise download a backbone
    return builder(**kwargs)


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


def _state_dict_file(path: str) -> Tuple[Any, Mapping]:
    """(the loaded object, the mapping of tensors inside it)."""
    if not os.path.exists(path):
        raise CliError(f"no such file: {path}")
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch without weights_only
            obj = torch.load(path, map_location="cpu")
    except Exception as e:  # torch.load raises many types, with multi-line messages
        text = str(e).strip()
        if "Weights only load failed" in text:
            why = ("not a file written by torch.save, or it holds objects other than tensors and plain "
                   "containers (it is loaded with weights_only=True, which runs no code from the file)")
        else:
            why = (text.splitlines() or [type(e).__name__])[0]
        raise CliError(f"cannot read a state_dict from {path}: {why}") from None

    def has_tensors(m: Any) -> bool:
        return isinstance(m, Mapping) and any(isinstance(v, torch.Tensor) for v in m.values())

    if has_tensors(obj):
        return obj, obj
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if has_tensors(obj.get(key)):
                return obj, obj[key]
    raise CliError(f"{path} does not hold a state_dict (a dict of tensors), found {type(obj).__name__}")


def load_model(spec: Optional[str]) -> Tuple[str, Union[nn.Module, Mapping], Any]:
    """``(display name, model or state_dict, what --save writes)`` for a MODEL argument."""
    if spec is None:
        name, model = default_model()
        return name, model, None
    if os.path.exists(spec) or spec.lower().endswith(STATE_DICT_SUFFIXES):
        obj, state = _state_dict_file(spec)
        return os.path.basename(spec), state, obj
    if spec == "small_cnn":
        return spec, small_cnn(), None
    if ":" in spec:
        return spec, _factory_model(spec), None
    return spec, _torchvision_model(spec), None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, no usage block
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a positive integer, got 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="parewire", description=__doc__.split("\n\n", 1)[1],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="torchvision model name, module:callable factory, or .pt/.pth state_dict file "
                        "(default: resnet18, or a small CNN without torchvision)")
    p.add_argument("--init", metavar="NAME", choices=sorted(INITIALIZERS),
                   help=f"re-initialise each weight first with torch.nn.init: {', '.join(sorted(INITIALIZERS))}")
    p.add_argument("--stabilize", metavar="K", type=_non_negative, default=0,
                   help="keep the best of K draws of --init (lowest strength variance) before rewiring")
    p.add_argument("--seed", metavar="N", type=_non_negative, default=0,
                   help="seed of the model's construction and of the rewiring (default 0)")
    p.add_argument("--sampler", metavar="NAME", choices=sorted(functional.SAMPLERS), default=DEFAULT_SAMPLER,
                   help=f"{' or '.join(sorted(functional.SAMPLERS))} (default {DEFAULT_SAMPLER})")
    p.add_argument("--workers", metavar="N", type=_positive, default=None,
                   help="threads (default: the CPUs available); results do not depend on it")
    p.add_argument("--save", metavar="PATH", help="write the rewired state_dict (torch.save)")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a PNG of strength distributions before vs after")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--version", action="version", version=f"parewire {__version__}")
    return p


def _check_output(path: Optional[str], flag: str) -> None:
    if path is None:
        return
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise CliError(f"{flag} {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise CliError(f"{flag} {path}: is a directory")


def run(args: argparse.Namespace) -> int:
    # Everything that can be checked is checked before the model is built.
    if args.stabilize and args.init is None:
        raise CliError(f"--stabilize {args.stabilize} needs --init NAME to draw candidates from")
    for path, flag in ((args.save, "--save"), (args.json, "--json"), (args.plot, "--plot")):
        _check_output(path, flag)
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CliError("--plot needs matplotlib, which is not installed: pip install matplotlib") from None

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)  # the model's own initialisation is reproducible too
    name, model, saved = load_model(args.model)
    report = rewire_model(
        model, init=args.init, stabilize=args.stabilize, seed=args.seed, sampler=args.sampler,
        workers=args.workers, progress=not args.quiet and sys.stderr.isatty(), name=name,
    )
    if args.save is not None:
        torch.save(saved if saved is not None else model.state_dict(), args.save)
    if args.json is not None:
        report.to_json(args.json)
    if args.plot is not None:
        report.plot(args.plot)
    if not args.quiet:
        print(report.table())
        print(report.summary() + f"; {time.perf_counter() - t0:.2f} s in all")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
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
