"""Training options: the one place where `train` flags become a TrainConfig and back.

The CLI (``train``, ``sweep``, ``jobs submit``), the job queue, sweeps and the Train page all go
through here, so a setting means the same everywhere and is checked once:

- :func:`add_train_arguments` defines the flags (the weighting methods' options come from their
  catalogue, :mod:`mtl_core.control.methods`);
- :func:`build_config` turns parsed flags into ``(Preset, TrainConfig)``, raising a one-line
  :class:`UserError` for anything wrong, before TensorFlow is imported;
- :func:`validate` does both for an argument list and returns it canonical (long flags, absolute paths),
  which is what a background job stores and runs;
- :func:`train_argv` writes keyword options as arguments (``loss_weights={"a": 1}`` -> ``--loss-weights a=1``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from mtl_core.control import methods
from mtl_core.control.config import PRECISIONS, TrainConfig, make_config
from mtl_core.control.loss_weights import parse_loss_weights
from mtl_core.control.presets import get_preset
from mtl_core.control.presets.base import Preset
from mtl_core.errors import UserError

# Flags that are about one run of `train`, not about the model: a job or a sweep sets them itself.
RUN_FLAGS = ("seeds", "keep", "force", "events", "json", "conditioned")


class ArgParser(argparse.ArgumentParser):
    """argparse whose usage errors are user errors: exit 2 and one line, like every other mistake."""

    def error(self, message: str):
        raise UserError(f"{self.prog.split()[-1]}: {message}")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of `train` (``--preset`` and ``--json`` are added by the caller)."""
    p.add_argument("--loss-weights", help="head=weight,... (defaults: the preset's)")
    p.add_argument("--weighting", default=None, help="loss-weighting method: " + "; ".join(
        f"{m.name}: {m.help}" for m in methods.methods().values()) + ". The --loss-weights multiply the adaptive ones")
    for method in methods.methods().values():
        for option in method.options:
            p.add_argument(method.option_flag(option), type=float, dest=f"{method.name}_{option.name}",
                           help=f"{option.help} (--weighting {method.name}; default {option.default:g}, "
                                f"{option.low:g}..{option.high:g})")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, help="train on a random subset of N examples")
    p.add_argument("--data", help="data source of the preset (see `presets`)")
    p.add_argument("--data-option", help="source options, e.g. n=3000,noise=0.3")
    p.add_argument("--data-dir", help="folder with the preset's own file format (e.g. X.npy, y.npy), or a CSV file")
    p.add_argument("--target", action="append", metavar="COLUMN[=KIND]",
                   help="table preset: a target column, one head each (repeat the flag); KIND is binary, "
                        "multiclass or regression, inferred from the values when omitted")
    p.add_argument("--features", metavar="A,B,...", help="tabular presets: the feature columns (default: every "
                   "other column, less ids and constants)")
    p.add_argument("--variant", help="a named architecture of the preset (see `presets`), e.g. resnet50")
    p.add_argument("--heads", help="train only these heads (comma-separated): single-task baselines")
    p.add_argument("--detach", help="head=1|0,...: put a head behind a stop-gradient, or not")
    p.add_argument("--link", help="head=src+src,...: heads whose features a head takes ('head=' for none)")
    p.add_argument("--link-gradient", help="head=1|0,...: whether a head's loss trains the features it takes "
                                           "from other heads (0: it reads them only)")
    p.add_argument("--branch-at", help="head=K,...: a head reads the backbone after its first K layers "
                                       "(0: the input, layers of its own), not after all of them; head= for all")
    p.add_argument("--monitor", help=("what early stopping and LR reduction watch: a head's validation metric, 'loss' "
                        "(the total validation loss) or 'heads' (every head's error relative to chance, averaged)"))
    p.add_argument("--freeze", type=float, help="fraction (0..1) of a pretrained backbone's layers kept frozen")
    p.add_argument("--device", default="auto", choices=["auto", "gpu", "cpu"],
                   help="auto: every GPU TensorFlow sees (several: MirroredStrategy), else the CPU")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: bf16 or fp16 mixed precision where the hardware runs it natively, else float32 "
                        "(the card records which); a named precision is part of the model's id")
    p.add_argument("--seeds", help="train a seed ensemble: comma-separated seeds")
    p.add_argument("--keep", help="ensemble filter: head=threshold,... on validation metrics")
    p.add_argument("--force", action="store_true", help="train again even if the config is stored")
    p.add_argument("--conditioned", action="store_true", help="one model for every weighting: lambda is a model "
                   "input, drawn per example in training; choose it with predict/evaluate --loss-weights")
    p.add_argument("--events", help="append progress events to this file as JSON lines")
    add_cluster_arguments(p)


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Where the training runs (not part of the model's config: the same config is the same model anywhere)."""
    p.add_argument("--cluster", metavar="ADDRESS", help="train on this Ray cluster: auto, HOST:PORT or "
                   "ray://HOST:PORT (default: $MTL_CLUSTER, else this machine); needs requirements-cluster.txt")
    p.add_argument("--cpus-per-job", type=float, help="--cluster: CPUs one training asks for (default 1)")
    p.add_argument("--gpus-per-job", type=float, help="--cluster: GPUs one training asks for (default 0)")
    p.add_argument("--retries", type=int, help="--cluster: run a training again this many times when its node or "
                   "worker dies (default 1)")
    p.add_argument("--workers", type=int, help="--cluster: train each model data-parallel on this many Ray Train "
                   "workers (MultiWorkerMirroredStrategy; --cpus-per-job/--gpus-per-job each; default 1)")


def cluster_spec(args, *, check: bool = True):
    """The parsed flags' :class:`~mtl_core.control.cluster.ClusterSpec` (``$MTL_CLUSTER`` when no flag), or None:
    train on this machine. ``check``: Ray installed and the cluster answering, before anything runs."""
    from mtl_core.control.cluster import spec_from

    return spec_from(getattr(args, "cluster", None), getattr(args, "cpus_per_job", None),
                     getattr(args, "gpus_per_job", None), getattr(args, "retries", None),
                   getattr(args, "workers", None), check=check)


def train_parser() -> ArgParser:
    p = ArgParser(prog="train")
    p.add_argument("--preset", required=True)
    add_train_arguments(p)
    p.add_argument("--json", action="store_true")
    return p


def kv_list(text: str, flag: str) -> dict[str, str]:
    """``"a=1,b=x"`` -> ``{"a": "1", "b": "x"}``; UserError naming ``flag`` for a part without ``=``."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise UserError(f"{flag}: {part!r} is not of the form name=value")
        out[key.strip()] = value.strip()
    return out


def _like(default, value: str, key: str):
    """A --data-option value typed like the preset's default it replaces (n=8000 is the number 8000, so the
    config, and the model id, are the same as the default's); a name without a numeric default stays text."""
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return value
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is None or (isinstance(default, int) and not number.is_integer()):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise UserError(f"--data-option: {key}={value!r} is not {kind} (the default is {default!r})")
    return int(number) if isinstance(default, int) else number


def _data_options(preset: Preset, args) -> dict:
    data = dict(preset.data_defaults)
    if args.data:
        if args.data not in preset.data_sources:
            raise UserError(f"--data: unknown source {args.data!r} for {preset.name} "
                            f"(known: {', '.join(preset.data_sources)})")
        data = {"source": args.data}
    if args.data_dir:
        if not preset.dir_source:
            raise UserError(f"--data-dir: {preset.name} reads no user folder")
        if not os.path.exists(args.data_dir):
            raise UserError(f"--data-dir: {args.data_dir}: no such folder or file")
        data = {"source": args.data or preset.dir_source, "dir": os.path.abspath(args.data_dir)}
    for key, value in kv_list(args.data_option or "", "--data-option").items():
        data[key] = _like(preset.data_defaults.get(key), value, key)
    if getattr(args, "target", None):
        if not preset.data_defined:
            raise UserError(f"--target: {preset.name} has its own heads ({', '.join(preset.task_names)}); "
                            "--target is for the table preset")
        data["targets"] = "+".join(args.target)
    if getattr(args, "features", None):
        if preset.input_kind != "tabular":
            raise UserError(f"--features: {preset.name} reads images, not table columns")
        data["features"] = "+".join(f.strip() for f in args.features.split(",") if f.strip())
    return data


def _model_spec(preset: Preset, args):
    """The preset's (or a variant's) ModelSpec with --heads, --detach, --link and --freeze applied."""
    from mtl_core.control.modelspec import ModelSpec

    spec, variant = preset.model, {}
    if args.variant:
        if args.variant not in preset.variants:
            raise UserError(f"--variant: unknown variant {args.variant!r} for {preset.name} "
                            f"(known: {', '.join(preset.variants) or 'none'})")
        spec, variant = preset.variants[args.variant], preset.variant_train.get(args.variant, {})
    if args.heads:
        heads = [h.strip() for h in args.heads.split(",") if h.strip()]
        for h in heads:
            if h not in preset.task_names:
                raise UserError(f"--heads: unknown head {h!r} (heads: {', '.join(preset.task_names)})")
        spec = spec.only(heads)
    active = [h.task for h in spec.heads]
    if args.detach:
        detach = {}
        for head, value in kv_list(args.detach, "--detach").items():
            if head not in active:
                raise UserError(f"--detach: unknown head {head!r} (heads: {', '.join(active)})")
            if value not in ("0", "1", "true", "false"):
                raise UserError(f"--detach: {head}={value}: use 1 (stop-gradient) or 0")
            detach[head] = value in ("1", "true")
        spec = spec.with_options(detach=detach)
    if args.link is not None:
        links = {}
        for head, value in kv_list(args.link, "--link").items():
            sources = tuple(s for s in value.split("+") if s)
            for name in (head, *sources):
                if name not in active:
                    raise UserError(f"--link: unknown head {name!r} (heads: {', '.join(active)})")
            links[head] = sources
        try:
            spec = spec.with_options(links=links)
            ModelSpec.from_dict(spec.to_dict())
        except ValueError as exc:
            raise UserError(f"--link: {exc}") from None
    if args.link_gradient:
        flows = {}
        for head, value in kv_list(args.link_gradient, "--link-gradient").items():
            if head not in active:
                raise UserError(f"--link-gradient: unknown head {head!r} (heads: {', '.join(active)})")
            if not spec.head(head).inputs_from:
                raise UserError(f"--link-gradient: head {head!r} takes no other head's features")
            if value not in ("0", "1", "true", "false"):
                raise UserError(f"--link-gradient: {head}={value}: use 1 (its loss trains them) or 0")
            flows[head] = value in ("1", "true")
        spec = spec.with_options(link_gradient=flows)
    if args.branch_at:
        branches = {}
        for head, value in kv_list(args.branch_at, "--branch-at").items():
            if head not in active:
                raise UserError(f"--branch-at: unknown head {head!r} (heads: {', '.join(active)})")
            depth = len(spec.backbone)
            if value and not (value.isdigit() and int(value) <= depth):
                raise UserError(f"--branch-at: {head}={value}: use a layer count 0..{depth} (the backbone: "
                                f"{', '.join(spec.backbone)}), or nothing for the whole backbone")
            branches[head] = int(value) if value else None
        spec = spec.with_options(branch_at=branches)
    if args.freeze is not None:
        if not spec.pretrained_steps:
            raise UserError(f"--freeze: {preset.name}'s backbone has no pretrained network to freeze")
        if not 0.0 <= args.freeze <= 1.0:
            raise UserError(f"--freeze: {args.freeze:g} is not a fraction in 0..1")
        spec = spec.with_freeze(args.freeze)
    return spec, variant


def _method_options(args) -> dict[str, float]:
    """The chosen method's options given as flags; an option of another method is a mistake."""
    chosen = args.weighting or methods.DEFAULT
    out = {}
    for method in methods.methods().values():
        for option in method.options:
            value = getattr(args, f"{method.name}_{option.name}", None)
            if value is None:
                continue
            if method.name != chosen:
                raise UserError(f"{method.option_flag(option)}: only for --weighting {method.name}")
            out[option.name] = value
    return out


def build_config(args) -> tuple[Preset, TrainConfig]:
    """Parsed `train` flags -> (preset, validated config). Nothing here imports TensorFlow."""
    preset = get_preset(args.preset)
    data = _data_options(preset, args)
    preset = preset.for_data(data)  # a table's heads come from its target columns
    spec, variant = _model_spec(preset, args)
    weights = parse_loss_weights(args.loss_weights) if args.loss_weights else variant.get("loss_weights")
    lr = args.lr if args.lr is not None else variant.get("lr")  # the user's flags win over the variant's
    config = make_config(preset, loss_weights=weights, data=data, model=spec.to_dict(), epochs=args.epochs,
                         batch_size=args.batch_size, lr=lr, seed=args.seed, limit=args.limit,
                         weighting=args.weighting, monitor=args.monitor, weighting_options=_method_options(args),
                         conditioned=getattr(args, "conditioned", False),
                         precision=getattr(args, "precision", None) or "auto")
    return preset, config


def validate(argv: Sequence[str]) -> tuple[list[str], str, dict]:
    """Check `train` arguments exactly as the CLI does (without importing TensorFlow).

    Returns (canonical argv, preset name, config dict); raises :class:`UserError` for bad weights,
    unknown heads, out-of-range epochs, a missing data folder, ...
    """
    argv = [str(a) for a in argv]
    if argv[:1] == ["train"]:
        argv = argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        raise UserError("train: --help is not a training option")
    parser = train_parser()
    args = parser.parse_args(argv)
    preset, config = build_config(args)
    if args.seeds:
        try:
            [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds: {args.seeds!r} is not a comma-separated list of integers") from None
    if args.keep:
        parse_loss_weights(args.keep)
    spec = cluster_spec(args)  # an unreachable cluster is refused here: nothing is queued
    if spec is not None:
        args.cluster = spec.address  # $MTL_CLUSTER at submit time: the job says where it runs
    defaults = vars(parser.parse_args(["--preset", args.preset]))
    canonical = ["--preset", args.preset]
    for action in parser._actions:  # in the parser's order, under each option's own flag
        key = action.dest
        value = getattr(args, key, None)
        if key in ("help", "preset", "json", "events") or value == defaults.get(key) or value in (None, False):
            continue
        if key == "data_dir":
            value = os.path.abspath(value)  # a job does not run in the caller's folder
        if isinstance(value, list):  # a repeated flag (--target)
            canonical += [part for item in value for part in (action.option_strings[0], str(item))]
            continue
        canonical += [action.option_strings[0]] + ([] if value is True else [str(value)])
    return canonical, preset.name, config.to_dict()


def _format(value) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def train_argv(preset: str, **options) -> list[str]:
    """Keyword options -> `train` arguments: ``loss_weights={"a": 1.0}`` -> ``--loss-weights a=1``; a dict
    becomes ``k=v,...`` (a list value, e.g. a link's sources, joined with ``+``; a bool as 1/0), ``True`` is
    a bare flag, ``None`` and ``False`` are left out."""
    argv = ["--preset", preset]
    for key, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, dict):
            argv += [flag, ",".join(f"{k}={_format(v)}" for k, v in value.items())]
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, _format(value)]
    return argv
