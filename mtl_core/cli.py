"""``python -m mtl_core``: everything the app does, headless.

Exit codes: 0 success, 2 the user's error (one line ``error: ...`` on stderr), 1 anything else.
With ``--json`` stdout carries exactly one JSON document on one line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
from contextlib import contextmanager

import numpy as np

from mtl_core import __version__
from mtl_core.control import options
from mtl_core.errors import ClusterError, UserError


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter (oneDNN, CUDA probing) kept off stderr.

    Those lines are written by C++ before logging is configured, so no environment variable
    silences them; file descriptor 2 is pointed at /dev/null for the import and device probe.
    Python exceptions raised here still reach the user once stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _json_safe(value):
    """NaN/inf (e.g. the AUC of a split with one class) become null: strict JSON, jq-friendly."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _emit(args, payload: dict, text: str) -> None:
    if args.json:
        print(json.dumps(_json_safe(payload), separators=(",", ":"), allow_nan=False))
    else:
        print(text)


def _fmt_metrics(metrics: dict) -> str:
    lines = []
    for head, values in metrics.items():
        shown = ", ".join(f"{k} {v:.4f}" for k, v in values.items()
                          if isinstance(v, float) and not math.isnan(v))
        lines.append(f"  {head:<14} {shown}")
    return "\n".join(lines)


def _summary_metrics(metrics: dict) -> dict:
    return {h: {k: v for k, v in m.items() if not isinstance(v, list)} for h, m in metrics.items()}


# -- commands -----------------------------------------------------------------------------------
def cmd_presets(args) -> int:
    from mtl_core.control.presets import all_presets
    from mtl_core.control.store import ModelStore

    store = ModelStore()
    rows = []
    for preset in all_presets():
        default = store.default(preset.name)
        rows.append({**preset.summary(), "model_available": default is not None,
                     "default_model": default.id if default else None})
    text = "\n".join(
        f"{r['name']:<22} heads: {', '.join(h['name'] + ' (' + h['kind'] + ')' for h in r['heads'])}\n"
        f"{'':<22} data: {r['default_data']}; model: {r['default_model'] or 'none yet (train one)'}"
        for r in rows)
    _emit(args, {"presets": rows}, text)
    return 0


@contextmanager
def _cluster_session(cluster):
    """While a cluster is used: Ray's driver prints its nodes' news (a raylet that died, a worker's lines)
    on stdout, which carries only the one JSON document: they go to stderr. Then leave the cluster."""
    if cluster is None:
        yield
        return
    real, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        from mtl_core.engine.remote import disconnect

        disconnect()
        sys.stdout = real


def cmd_train(args) -> int:
    from mtl_core.control.progress import EventFile, ProgressBar

    preset, config = options.build_config(args)  # every flag is checked before the slow TensorFlow import
    cluster = options.cluster_spec(args)  # Ray installed and the cluster answering, or one line now
    if cluster is not None and args.seeds:
        raise UserError("--seeds with --cluster: a seed ensemble trains on this machine only (for now); "
                        "run one `train --cluster ... --seed S` per seed")
    if args.device == "cpu":  # hide the GPUs before TensorFlow sees them
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    _quiet_tensorflow()
    from mtl_core.engine.training import train  # the engine imports TensorFlow: only after the checks
    if args.device == "gpu":
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            raise UserError("--device gpu: TensorFlow sees no GPU on this machine (use auto or cpu)")
    subscribers = [ProgressBar()]
    if args.events:
        subscribers.append(EventFile(args.events))
    if args.seeds:
        return _train_ensemble(args, config, subscribers)
    with _cluster_session(cluster):
        model_id, card, cached = train(preset.name, config, subscribers=subscribers, force=args.force,
                                       cluster=cluster)
    from mtl_core.control.datasets import data_notes

    for line in data_notes(card.get("data", {})):  # columns left out or flagged, values imputed (tables)
        print(f"note: {line}", file=sys.stderr)
    metrics = _summary_metrics(card["metrics"]["test"])
    where = "stored model (same config; not retrained)" if cached else f"trained in {card['training']['seconds']}s"
    node = card["training"].get("node") or {}
    if not cached and node.get("cluster"):
        workers = f"{node['workers']} workers led by " if node.get("workers", 1) > 1 else ""
        where += f" on {workers}{node.get('host')} ({node.get('ip')}) of the cluster {node['cluster']}"
    payload, note = {"model": model_id, "metrics": metrics, "cached": cached}, ""
    if card.get("conditioned"):  # test metrics at the default lambda; the card holds a lambda grid
        payload["loss_weights"] = card["conditioned"]["default"]
        note = (" at the default lambda " + ", ".join(f"{h}={w:.3g}" for h, w in payload["loss_weights"].items())
                + f"\n(loss-conditioned: validation metrics on {len(card['conditioned']['grid'])} lambda points in "
                "the card; choose lambda with predict/evaluate --loss-weights)")
    _emit(args, payload, f"model {model_id}: {where}\ntest metrics{note}:\n{_fmt_metrics(metrics)}")
    return 0


def _train_ensemble(args, config, subscribers) -> int:
    from mtl_core.control.loss_weights import parse_loss_weights
    from mtl_core.engine.ensemble import train_ensemble

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds: {args.seeds!r} is not a comma-separated list of integers") from None
    thresholds = parse_loss_weights(args.keep) if args.keep else {}
    result = train_ensemble(config, seeds, thresholds, subscribers=subscribers)
    payload = {"kept": result.kept, "dropped": result.dropped,
               "members": {k: {**v, "validation": _summary_metrics(v["validation"])}
                           for k, v in result.members.items()},
               "ensemble": ",".join(result.kept) or None}
    text = "\n".join(f"seed {m['seed']}: {mid} {'kept' if m['kept'] else 'dropped'}"
                     for mid, m in result.members.items())
    text += f"\nensemble: --model {payload['ensemble']}" if result.kept else "\nno model passed --keep"
    _emit(args, payload, text)
    return 0 if result.kept else 2


def _load_predictor(preset: str, model: str | None, loss_weights: str | None = None):
    """Resolve the model(s) first, so a wrong name (or --loss-weights for a model that does not take them)
    fails fast, then import TensorFlow and load."""
    from mtl_core.control.presets import get_preset
    from mtl_core.control.store import ModelStore

    get_preset(preset)
    store = ModelStore()
    refs = [r.strip() for r in model.split(",")] if model else [None]
    stored = [store.resolve(preset, r) for r in refs]
    if loss_weights is not None:
        from mtl_core.control.loss_weights import parse_loss_weights, resolve_weights

        given = parse_loss_weights(loss_weights)
        for member in stored:
            resolve_weights({"id": member.id, **member.card}, given)
    _quiet_tensorflow()
    from mtl_core.engine.inference import Predictor

    return Predictor(stored)


def cmd_evaluate(args) -> int:
    from mtl_core.control.loss_weights import parse_loss_weights

    predictor = _load_predictor(args.preset, args.model, args.loss_weights)
    from mtl_core.engine.evaluation import evaluate

    given = parse_loss_weights(args.loss_weights) if args.loss_weights else None
    result = evaluate(args.preset, data_dir=args.data_dir, predictor=predictor, loss_weights=given)
    metrics = _summary_metrics(result["metrics"])
    lam = (" at lambda " + ", ".join(f"{h}={w:.3g}" for h, w in result["loss_weights"].items())
           if result.get("loss_weights") else "")
    _emit(args, {**result, "metrics": metrics},
          f"model {result['model']}{lam} on {result['split']} ({result['n']} examples)\n{_fmt_metrics(metrics)}")
    return 0


def cmd_predict(args) -> int:
    from mtl_core.control.loss_weights import parse_loss_weights

    predictor = _load_predictor(args.preset, args.model, args.loss_weights)
    given = parse_loss_weights(args.loss_weights) if args.loss_weights else None
    prediction = predictor.predict(list(args.inputs), loss_weights=given, explain=args.explain)
    lines = []
    if prediction.loss_weights:
        lines.append("lambda: " + ", ".join(f"{h}={w:.3g}" for h, w in prediction.loss_weights.items()))
    for item in prediction.items:
        if "error" in item:
            lines.append(f"{item['input']}: error: {item['error']}")
            continue
        parts = []
        for head, out in item["outputs"].items():
            if out["kind"] == "regression":
                parts.append(f"{head} {out['value']:.4g}{' ' + out['unit'] if out['unit'] else ''}")
            else:  # the probability of the label shown (for a binary head too)
                parts.append(f"{head} {out['label']} ({out['probabilities'][out['label']]:.1%})")
            if "explanation" in out:
                parts[-1] += f" [{_explained(out['explanation'])}]"
        lines.append(f"{item['input']}: " + "; ".join(parts))
        lines += [f"  warning: {w}" for w in item.get("warnings", [])]  # e.g. unlike the training data
    _emit(args, prediction.to_dict(), "\n".join(lines))
    for item in prediction.items:
        if "error" in item:
            print(f"error: {item['error']}", file=sys.stderr)
    return 2 if prediction.failed else 0


def _explained(explanation) -> str:
    """One explanation in a few words: where a map peaks, or a row's strongest features."""
    if isinstance(explanation, dict):
        top = sorted(explanation.items(), key=lambda kv: -kv[1])[:3]
        return "leans on " + ", ".join(f"{k} {v:.2f}" for k, v in top)
    grid = np.asarray(explanation)
    if not grid.any():
        return "no map (the score does not depend on the features)"
    row, col = np.unravel_index(int(grid.argmax()), grid.shape)
    return f"looks at x={col}, y={row} of {grid.shape[1]}x{grid.shape[0]}"


def cmd_models(args) -> int:
    from mtl_core.control.presets import all_presets
    from mtl_core.control.store import ModelStore

    store = ModelStore()
    if args.make_default:
        made = store.set_default(args.make_default)
        print(f"{made.id} is now the default model of {made.preset}", file=sys.stderr)
    defaults = {p.name: (store.default(p.name).id if store.default(p.name) else None) for p in all_presets()}
    rows = []
    for model in store.list():
        rows.append({**model.summary(), "metrics": _summary_metrics(model.summary()["metrics"]),
                     "default": defaults.get(model.preset) == model.id})
    text = "\n".join(f"{'*' if r['default'] else ' '} {r['id']:<30} {r['source']:<8} {r['created'] or ''}"
                     for r in rows) or "no models yet: python -m mtl_core train --preset PRESET"
    _emit(args, {"models": rows}, text)
    return 0


def cmd_sweep(args) -> int:
    """Train (or reuse) one model per loss-weight vector; their validation metrics, Pareto flags, hypervolume."""
    from mtl_core.control import pareto
    from mtl_core.control.progress import ProgressBar
    from mtl_core.control.sweeps import check_sweep

    preset, config = options.build_config(args)  # the train options, checked before TensorFlow is imported
    heads = list(config.loss_weights)
    check_sweep(args.points, args.method, heads)
    cluster = options.cluster_spec(args)  # the points run at once on the cluster, else one after the other here
    vectors = pareto.weight_vectors(heads, args.points, args.method, seed=config.seed)
    _quiet_tensorflow()
    import tensorflow as tf

    from mtl_core.engine.sweep import run_sweep

    tf.get_logger().setLevel("ERROR")  # one retracing warning per trained point says nothing to the user

    def on_point(i, row, cached):
        what = "stored model reused" if cached else "trained"
        if row.get("error"):
            what = f"failed: {row['error']}"
        elif row.get("node") and not cached:
            what += f" on {row['node'].get('host')} ({row['node'].get('ip')})"
        weights = ", ".join(f"{h}={w:g}" for h, w in row["weights"].items())
        print(f"point {i + 1}/{len(vectors)} ({weights}): {row['model']} {what}", file=sys.stderr, flush=True)

    bar = [] if cluster is not None else [ProgressBar()]  # parallel points: one line per point, not N bars
    with _cluster_session(cluster):
        result = run_sweep(preset.name, config, vectors, subscribers=bar, on_point=on_point, cluster=cluster)
    lines = []
    for point in result["points"]:
        weights = ", ".join(f"{h}={w:.3g}" for h, w in point["weights"].items())
        shown = ", ".join(f"{h} {m} {v:.4f}" for h, values in point["metrics"].items() for m, v in values.items()
                          if isinstance(v, float))
        lines.append(f"{'*' if point['pareto'] else ' '} {point['model']}  [{weights}]  {shown}")
    lines.append(f"hypervolume {result['hypervolume']:.4f} (reference: "
                 + ", ".join(f"{h} {v:.3g}" for h, v in result["reference"].items()) + "); * Pareto-optimal")
    for failed in result.get("failed", []):
        lines.append(f"failed: {failed['model']} [{', '.join(f'{h}={w:.3g}' for h, w in failed['weights'].items())}]"
                     f": {failed['error']}")
    _emit(args, result, "\n".join(lines))
    for failed in result.get("failed", []):
        print(f"error: sweep point {failed['model']}: {failed['error']}", file=sys.stderr)
    return 1 if result.get("failed") else 0


def cmd_pull(args) -> int:
    """A preset's model from the Hugging Face Hub: one commit, sha256 checked, loaded under safe_mode, stored."""
    from mtl_core.engine import hub

    announced: set[str] = set()

    def announce(name: str, done: int, total: int | None) -> None:  # what and how big, before its bytes arrive
        if name not in announced:
            announced.add(name)
            size = f" ({total / 1e6:.1f} MB)" if total else ""
            print(f"downloading {name}{size} from {args.repo}", file=sys.stderr, flush=True)

    # the network and the checks, without TensorFlow
    fetched = hub.fetch(args.preset, args.repo, args.revision, progress=announce)
    _quiet_tensorflow()
    result = hub.register(fetched)
    what = "already in the store" if result.already else "stored"
    cache = ", from the local Hugging Face cache" if result.from_cache else ""
    _emit(args, result.to_dict(), f"model {result.model}: {what} ({result.repo}@{result.commit[:12]}{cache})\n"
          f"use it: python -m mtl_core predict --preset {result.preset} --model {result.model} INPUT...\n"
          f"or make it the preset's default: python -m mtl_core models --make-default {result.model}")
    return 0


def cmd_push(args) -> int:
    """A stored model to the Hub with a model card; the token comes from HF_TOKEN only (never a flag: shell
    history and process lists would keep it)."""
    from mtl_core.engine import hub

    result = hub.push(args.model, args.repo, private=args.private)
    _emit(args, result.to_dict(), f"pushed {result.model} to {result.url} (commit {result.commit[:12]}, "
          f"{'private' if result.private else 'public'})")
    return 0


def _job_row(job, log: bool = False) -> dict:
    from mtl_core.control.jobs import progress, tail_log

    row = {**job.to_dict(), "progress": progress(job)}
    if log:
        row["log"] = tail_log(job)
    else:  # a listing stays short: the loss weights, not the whole config
        row["loss_weights"] = row.pop("config").get("loss_weights")
    return row


def _job_line(job) -> str:
    from mtl_core.control.jobs import progress

    p = progress(job)
    state = {"queued": f"queued #{job.position}",
             "running": f"running {p['fraction']:.0%} (epoch {p['epoch']}/{p['epochs']})"}.get(job.state, job.state)
    where = ""
    if job.cluster:
        node = p.get("node") or {}
        where = f"  [cluster {job.cluster}{': ' + str(node.get('host')) if node.get('host') else ''}]"
    return f"{job.id}  {job.preset:<22} {state:<30} {job.model or job.error or ''}{where}"


def cmd_jobs(args) -> int:
    """Background trainings (mtl_core.control.jobs): one at a time per machine, first come first served; jobs
    for a Ray cluster (--cluster) all at once, scheduled by the cluster."""
    from mtl_core.control.jobs import JobQueue

    queue = JobQueue()
    action = args.jobs_command or "list"
    if action == "submit":
        rest = [a for a in args.train_args if a != "--"]
        args.json = args.json or "--json" in rest  # `jobs submit P --epochs 3 --json` reads naturally too
        job = queue.submit(["--preset", args.preset, *rest])  # checked like `train`; nothing queued when wrong
        queue.advance()
        job = queue.get(job.id)
        where = f" (#{job.position} in the queue)" if job.state == "queued" else ""
        _emit(args, {"job": _job_row(job)}, f"job {job.id}: {job.state}{where}")
        return 0
    if action == "cancel":
        job = queue.cancel(args.id)
        _emit(args, {"job": _job_row(job)}, f"job {job.id}: {job.state}")
        return 0
    queue.advance()  # notice finished or dead trainings, start the next one
    if action == "show":
        job = queue.get(args.id)
        row = _job_row(job, log=True)
        _emit(args, {"job": row}, "\n".join([_job_line(job), *row["log"]]))  # the log starts with the command
        return 0
    jobs = queue.list()
    _emit(args, {"jobs": [_job_row(j) for j in jobs]}, "\n".join(map(_job_line, jobs))
          or "no jobs yet: python -m mtl_core jobs submit PRESET [options of train]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    prog = "mtl-studio" if os.path.basename(sys.argv[0]) == "mtl-studio" else "python -m mtl_core"
    parser = options.ArgParser(prog=prog, description="Multi-Task Studio from the command line.")
    parser.add_argument("--version", action="version", version=f"mtl-studio {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=options.ArgParser)

    p = sub.add_parser("presets", help="list presets, their heads and whether a model is available")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("train", help="train a model (or return the stored one of the same config)")
    p.add_argument("--preset", required=True)
    options.add_train_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    train_parser = p
    p = sub.add_parser("sweep", help="train one model per loss-weight vector; the Pareto front of their metrics")
    p.add_argument("--points", type=int, default=5, help="number of weight vectors (default 5)")
    p.add_argument("--method", default="grid", help="grid (a regular simplex grid, default) or dirichlet "
                   "(random, seeded by --seed)")
    for action in train_parser._actions:  # every option of `train` that makes sense for each point
        if action.dest not in ("help", "preset", "loss_weights", *options.RUN_FLAGS):
            p._add_action(action)
    p.add_argument("--preset", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep, loss_weights=None, seeds=None, keep=None, force=False, events=None,
                   conditioned=False)

    p = sub.add_parser("evaluate", help="metrics of a model on its test split (or on --data-dir)")
    p.add_argument("--preset", required=True)
    p.add_argument("--model")
    p.add_argument("--data-dir")
    p.add_argument("--loss-weights", help="head=weight,...: lambda of a loss-conditioned model (train --conditioned)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="every head's output for image files")
    p.add_argument("--preset", required=True)
    p.add_argument("--model", help="model id or folder; several ids joined by commas: an ensemble")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--loss-weights", help="head=weight,...: lambda of a loss-conditioned model (train --conditioned)")
    p.add_argument("--explain", action="store_true", help="add each head's explanation: a Grad-CAM map in [0, 1] "
                   "at the image's resolution, or per-feature weights for a table row (with --json)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("models", help="every model: shipped and stored; * marks each preset's default")
    p.add_argument("--make-default", metavar="ID", help="make model ID its preset's default: the model `predict` "
                   "and every page of the app use when none is named (a training never changes it by itself)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("pull", help="download a preset's model from the Hugging Face Hub into the store")
    p.add_argument("--preset", required=True)
    p.add_argument("--repo", required=True, help="OWNER/NAME of a model repository on the Hub")
    p.add_argument("--revision", help="branch, tag or commit sha (default: main); a sha pins the exact files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("push", help="upload a model with a model card to the Hugging Face Hub (token: HF_TOKEN)")
    p.add_argument("--model", required=True, help="model id (see `models`)")
    p.add_argument("--repo", required=True, help="OWNER/NAME; created if it does not exist")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("jobs", help="background trainings: list (default), submit, show, cancel")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)
    jobs = p.add_subparsers(dest="jobs_command", parser_class=options.ArgParser)
    q = jobs.add_parser("submit", help="queue a training: jobs submit PRESET [options of train]")
    q.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    q.add_argument("preset")
    q.add_argument("train_args", nargs=argparse.REMAINDER, help="any options of `train` (--epochs 3 ...)")
    for name, text in (("show", "a job's state, progress and last log lines"), ("cancel", "cancel a job")):
        q = jobs.add_parser(name, help=text)
        q.add_argument("id")
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout piped into `head` and closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        if _AS_PROGRAM:  # a job's cancel may ask again while this process stops: one interrupt is enough
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (a bug: say so in one line, traceback on request)
        if os.environ.get("MTL_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
              f"(set MTL_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


_AS_PROGRAM = False  # set by run_as_program: main() runs as its own process, not inside a caller (tests)


def run_as_program() -> None:
    """``python -m mtl_core`` and ``mtl-studio``: main(), then exit with its code. After an interrupt (Ctrl-C, or
    a background job's cancel) the process leaves at once with 130 once its line is written: TensorFlow's
    runtime, stopped mid-step, can crash while the interpreter tears down (seen as SIGSEGV, exit -11)."""
    global _AS_PROGRAM
    _AS_PROGRAM = True
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


def entry() -> None:
    """The ``mtl-studio`` console script."""
    run_as_program()
