"""The Trainer against PyTorch eager on the same model, data and budget (issue 16, part 1).

For an image preset (shapes-3head by default), in one run:

- the studio's ``Trainer`` (Keras, float32 here so both sides compute alike; ``--keras-precision auto`` adds
  the precision the studio picks on this CPU) trains the preset's model for ``--epochs`` epochs, early stopping
  and the learning-rate schedule switched off;
- the same network in PyTorch eager (``TorchNet`` below interprets the same ModelSpec: the layer plan, the
  stop-gradient, the head links (read-only where ``link_gradient`` is off), dropout, the output activations
  and Rescale), with the same loss weights,
  data, split, standardisation, batch size, epochs, Adam (lr, Keras's epsilon 1e-7, per-tensor gradient
  clipping as Keras's ``clipnorm``) and a validation pass per epoch, as ``fit`` does; like the Trainer (early
  stopping with ``restore_best_weights``), it returns the weights of the epoch with the lowest validation loss.

Printed: training images/s (epochs x training examples / the fit's wall time, validation included), batched
prediction images/s over the test split (batches of 512), and each head's test metric, with the ratios
Keras / PyTorch. The goal is the Trainer at 1.5x PyTorch's training throughput or more, with metrics equal
within noise. Then what that goal asks of the CPU: the step's floating-point operations (counted from the
network's layers) at 1.5x PyTorch's measured throughput, against the fastest float32 matrix multiply each
library runs on this machine. Where the goal needs more than that, no framework reaches it at float32 here.

    pip install -r requirements-bench.txt
    python bench/peer_torch.py [--preset shapes-3head] [--epochs 5] [--n 3000] [--seeds 3] [--keras-precision auto]
                               [--profile]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench._machine import machine  # noqa: E402
from mtl_core.control import datasets  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.datasets import load_training_data  # noqa: E402
from mtl_core.control.plan import parse_step  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.batches import predict_in_batches  # noqa: E402
from mtl_core.engine.training import Trainer, train_statistics  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:  # pragma: no cover
    sys.exit("PyTorch is not installed: pip install -r requirements-bench.txt")


class Residual(nn.Module):
    """``res:F`` as models/plan.py builds it: relu(conv3x3(relu(conv3x3(x))) + conv1x1(x))."""

    def __init__(self, channels: int, filters: int):
        super().__init__()
        self.skip = nn.Conv2d(channels, filters, 1)
        self.a = nn.Conv2d(channels, filters, 3, padding="same")
        self.b = nn.Conv2d(filters, filters, 3, padding="same")

    def forward(self, x):
        return torch.relu(self.b(torch.relu(self.a(x))) + self.skip(x))


def torch_plan(plan, channels: int, size: int | None) -> tuple[nn.Module, int, int | None]:
    """(the plan's layers as a torch module, output channels or features, spatial size or None once flat)."""
    layers: list[nn.Module] = []
    for step in plan:
        op, args = parse_step(step)
        if op == "conv":
            kernel = int(args[1]) if len(args) > 1 else 3
            layers += [nn.Conv2d(channels, int(args[0]), kernel, padding="same"), nn.ReLU()]
            channels = int(args[0])
        elif op == "res":
            layers.append(Residual(channels, int(args[0])))
            channels = int(args[0])
        elif op == "bn":
            layers.append(nn.BatchNorm2d(channels, momentum=0.1, eps=1e-3))  # Keras's momentum 0.9, epsilon 1e-3
        elif op == "pool":
            layers.append(nn.MaxPool2d(2))
            size //= 2
        elif op == "gap":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            size = None
        elif op == "flatten":
            layers.append(nn.Flatten())
            channels, size = channels * size * size, None
        elif op == "dense":
            layers += [nn.Linear(channels, int(args[0])), nn.ReLU()]
            channels = int(args[0])
        elif op == "dropout":
            layers.append(nn.Dropout(float(args[0])))
        else:
            raise SystemExit(f"peer_torch.py does not translate the layer step {step!r}")
    return nn.Sequential(*layers), channels, size


def keras_init(module: nn.Module) -> None:
    """Keras's initialisers: Glorot uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class TorchNet(nn.Module):
    """The preset's ModelSpec as builder.build_model builds it, in PyTorch (NCHW)."""

    def __init__(self, spec, tasks: dict, mean: float, std: float, target_scale: dict):
        super().__init__()
        h, _, c = spec.input_shape
        self.mean, self.std = float(mean), float(std)
        # one module per backbone step, so a head with branch_at=k can read the backbone after k steps
        self.backbone, taps = nn.ModuleList(), [(c, h)]
        for step in spec.backbone:
            module, *shape = torch_plan((step,), *taps[-1])
            self.backbone.append(module)
            taps.append(tuple(shape))
        self.spec, self.tasks, self.target_scale = spec, tasks, target_scale
        self.trunks, self.hiddens, self.outs, self.drops = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), {}
        widths: dict[str, int] = {}
        for head in spec.build_order():
            trunk, width, _ = torch_plan(head.trunk, *taps[len(taps) - 1 if head.branch_at is None else head.branch_at])
            width += sum(widths[s] for s in head.inputs_from)
            hidden, width, _ = torch_plan(head.hidden, width, None)
            widths[head.task] = width
            self.trunks[head.task], self.hiddens[head.task] = trunk, hidden
            self.drops[head.task] = head.dropout
            self.outs[head.task] = nn.Linear(width, tasks[head.task].head_kind.units(tasks[head.task]))
        self.dropout = nn.ModuleDict({k: nn.Dropout(p) for k, p in self.drops.items() if p})
        keras_init(self)

    def forward(self, x):
        taps = [(x - self.mean) / self.std]
        for module in self.backbone:
            taps.append(module(taps[-1]))
        features, out = {}, {}
        for head in self.spec.build_order():
            z = taps[-1] if head.branch_at is None else taps[head.branch_at]
            z = z.detach() if head.detach else z
            z = self.trunks[head.task](z)
            if head.inputs_from:
                taken = [features[s] if head.link_gradient else features[s].detach() for s in head.inputs_from]
                z = torch.cat([z, *taken], dim=1)
            z = self.hiddens[head.task](z)
            features[head.task] = z
            if head.task in self.dropout:
                z = self.dropout[head.task](z)
            y = self.outs[head.task](z)
            kind = self.tasks[head.task].kind
            activation = head.output_activation or {"multiclass": "softmax", "binary": "sigmoid"}.get(kind, "linear")
            if activation == "sigmoid":
                y = torch.sigmoid(y)
            elif activation == "linear" and head.task in self.target_scale:
                mean_t, std_t = self.target_scale[head.task]
                y = y * std_t + mean_t
            out[head.task] = y  # multiclass: logits (softmax inside the loss, as Keras's from_logits=False)
        return out


def torch_losses(net, out, y, weights) -> torch.Tensor:
    """The weighted sum of the heads' losses. A missing label (-1 or NaN) weighs 0 and the mean is over the
    whole batch, as Keras's masks-as-sample-weights with its "sum_over_batch_size" reduction."""
    total = 0.0
    for name, task in net.tasks.items():
        target = y[name].double()
        present = (target >= 0) if task.kind != "regression" else ~torch.isnan(target)
        filled = torch.where(present, target, torch.zeros_like(target))
        if task.kind == "multiclass":
            each = nn.functional.cross_entropy(out[name], filled.long(), reduction="none")
        elif task.kind == "binary":
            each = nn.functional.binary_cross_entropy(out[name].squeeze(1), filled.float(), reduction="none")
        else:
            fn = nn.functional.l1_loss if task.loss == "mae" else nn.functional.mse_loss
            each = fn(out[name].squeeze(1), filled.float(), reduction="none")
        total = total + weights[name] * (each * present.float()).mean()
    return total


def torch_predict(net, x: np.ndarray, batch: int = 512) -> dict[str, np.ndarray]:
    net.eval()
    parts: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out = net(torch.from_numpy(np.ascontiguousarray(x[start:start + batch].transpose(0, 3, 1, 2))))
            for name, value in out.items():
                if net.tasks[name].kind == "multiclass":
                    value = torch.softmax(value, dim=1)
                parts.setdefault(name, []).append(value.numpy())
    return {k: (np.concatenate(v)[:, 0] if np.concatenate(v).shape[-1] == 1 else np.concatenate(v))
            for k, v in parts.items()}


def metric(task, truth: np.ndarray, pred: np.ndarray) -> tuple[str, float]:
    """The head's test metric over the examples that have its label."""
    truth = truth.astype(np.float64)
    present = ~np.isnan(truth) if task.kind == "regression" else truth >= 0
    truth, pred = truth[present], pred[present]
    if task.kind == "regression":
        return "mae", float(np.mean(np.abs(pred - truth)))
    if task.kind == "binary":
        return "accuracy", float(np.mean((pred >= 0.5) == truth))
    return "accuracy", float(np.mean(pred.argmax(1) == truth))


def torch_setup(preset, config, data, split, seed: int):
    """(the network, Adam, the images as one NCHW tensor, the labels as tensors) as the Trainer would start."""
    torch.manual_seed(seed)
    x = data.x if data.x.ndim == 4 else data.x[..., None]
    mean, std = train_statistics(data.x[split.train], per_feature=False)
    tasks = {t.name: t for t in preset.tasks}
    target_scale = {}
    for name, task in tasks.items():
        if task.kind == "regression" and not preset.model.head(name).output_activation:
            known = np.asarray(data.y[name])[split.train].astype(np.float64)
            known = known[~np.isnan(known)]
            target_scale[name] = (float(known.mean()), float(known.std() + 1e-6))
    net = TorchNet(preset.model, tasks, mean, std, target_scale)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, eps=1e-7)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32))
    ys = {k: torch.from_numpy(np.asarray(v)) for k, v in data.y.items() if k in tasks}
    return net, opt, xt, ys


def torch_step(net, opt, xb, yb, weights: dict, clipnorm: float) -> None:
    """One training step: the weighted loss, backward, Keras's clipnorm (each gradient tensor on its own), Adam."""
    opt.zero_grad(set_to_none=True)
    torch_losses(net, net(xb), yb, weights).backward()
    for p in net.parameters():
        if p.grad is not None:
            torch.nn.utils.clip_grad_norm_([p], clipnorm)
    opt.step()


def train_torch(preset, config, data, split, seed: int) -> tuple[TorchNet, float, list[float]]:
    net, opt, xt, ys = torch_setup(preset, config, data, split, seed)
    weights = dict(config.loss_weights)
    train_idx, val_idx = np.asarray(split.train), np.asarray(split.val)
    rng = np.random.default_rng(seed)
    if config.monitor != "loss":
        raise SystemExit(f"peer_torch.py keeps the best epoch by the total validation loss; {preset.name} monitors "
                         f"{config.monitor!r}")
    t0 = time.perf_counter()
    epochs = []
    best: tuple[float, dict | None] = (float("inf"), None)
    for _ in range(config.epochs):
        epoch_t0 = time.perf_counter()
        net.train()
        order = train_idx[rng.permutation(len(train_idx))]
        for start in range(0, len(order), config.batch_size):
            idx = torch.from_numpy(order[start:start + config.batch_size])
            torch_step(net, opt, xt[idx], {k: v[idx] for k, v in ys.items()}, weights, config.clipnorm)
        net.eval()
        total = 0.0
        with torch.no_grad():  # the validation pass fit makes every epoch
            for start in range(0, len(val_idx), 512):
                idx = torch.from_numpy(val_idx[start:start + 512])
                total += len(idx) * float(torch_losses(net, net(xt[idx]), {k: v[idx] for k, v in ys.items()}, weights))
        if total / len(val_idx) < best[0]:  # the Trainer's EarlyStopping(restore_best_weights) on the total val loss
            best = (total / len(val_idx), copy.deepcopy(net.state_dict()))
        epochs.append(time.perf_counter() - epoch_t0)
    net.load_state_dict(best[1])
    return net, time.perf_counter() - t0, epochs


def interleaved_ms(pairs: dict, calls: int = 30, warmup: int = 5) -> dict[str, tuple[float, float]]:
    """{part: (Keras ms, PyTorch ms)}, medians per call. The two sides' calls alternate, so a change in the
    machine's speed while it runs (this VM's varies by 30% over a minute) hits both alike."""
    out = {}
    for part, (keras_call, torch_call) in pairs.items():
        times: dict[int, list[float]] = {0: [], 1: []}
        for i in range(warmup + calls):
            for side, fn in enumerate((keras_call, torch_call)):
                t0 = time.perf_counter()
                fn()
                if i >= warmup:
                    times[side].append(time.perf_counter() - t0)
        out[part] = tuple(1000 * float(np.median(times[side])) for side in (0, 1))
    return out


def keras_parts(preset, config, data, split) -> tuple[dict, dict]:
    """The Trainer's training step in parts, as callables on one batch of its own tf.data pipeline (next batch,
    forward, forward + backward, the whole train_step: clipping, Adam, metrics), and the per-epoch costs the
    fit loop adds, in ms: the first epoch's extra time (tracing), the validation pass, the conflict monitor."""
    import keras
    import tensorflow as tf

    from mtl_core.engine.models.builder import build_model

    trainer = Trainer(preset, config)
    x, spec, mean, std, _ = trainer._inputs(data, split)
    labels, masks, scale = trainer._targets(data, split)
    trainer.partial_labels = masks is not None
    keras.utils.set_random_seed(config.seed)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(trainer.precision if trainer.precision != "auto" else "mixed_bfloat16")
    model = build_model(spec, trainer.tasks, mean, std, scale)
    keras.config.set_dtype_policy(previous)
    trainer._compile(model, keras, scale)
    train_ds, val_ds = trainer._datasets(tf, x, labels, masks, split)
    n_batches = int(np.ceil(len(split.train) / config.batch_size))
    epochs: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(time.perf_counter() - self.t0)

    model.fit(train_ds, validation_data=val_ds, epochs=2, verbose=0, callbacks=[Clock()])
    trace = epochs[0] - epochs[1]
    batch = next(iter(train_ds))
    step = tf.function(model.train_step)
    step(batch)
    fits, loops, validations = [], [], []
    for _ in range(3):  # alternating, so a change in the machine's speed hits all three alike
        model.fit(train_ds, validation_data=val_ds, epochs=1, verbose=0, callbacks=[Clock()])
        fits.append(epochs[-1])
        t0 = time.perf_counter()
        for _ in range(n_batches):
            step(batch)
        loops.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.evaluate(val_ds, verbose=0)
        validations.append(time.perf_counter() - t0)
    per_epoch = {"first epoch's extra (tracing), per training": 1000 * trace,
                 "fit epoch (steady state)": 1000 * float(np.median(fits)),
                 "the epoch's steps, train_step in a Python loop": 1000 * float(np.median(loops)),
                 "validation pass (evaluate)": 1000 * float(np.median(validations))}
    monitor = trainer._conflict_monitor(model, x, labels, masks, split, scale)
    monitor.measure()
    t0 = time.perf_counter()
    monitor.measure()
    per_epoch["conflict monitor"] = 1000 * (time.perf_counter() - t0)

    batches = iter(train_ds.repeat())
    xb, yb = batch[0], batch[1]
    forward = tf.function(lambda: model(xb, training=True))

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=xb, y=yb, y_pred=model(xb, training=True))
        return tape.gradient(loss, model.trainable_variables)

    return {"next batch (input pipeline)": lambda: next(batches), "forward": forward,
            "forward + backward": gradients, "train step": lambda: step(batch)}, per_epoch


def torch_parts(preset, config, data, split, seed: int) -> dict:
    """The same parts of a PyTorch eager step, as callables (the batch: an index into the in-memory tensor)."""
    net, opt, xt, ys = torch_setup(preset, config, data, split, seed)
    weights = dict(config.loss_weights)
    idx = torch.from_numpy(np.asarray(split.train)[:config.batch_size])
    xb, yb = xt[idx], {k: v[idx] for k, v in ys.items()}
    net.train()

    def gradients():
        opt.zero_grad(set_to_none=True)
        torch_losses(net, net(xb), yb, weights).backward()

    return {"next batch (input pipeline)": lambda: (xt[idx], {k: v[idx] for k, v in ys.items()}),
            "forward": lambda: net(xb), "forward + backward": gradients,
            "train step": lambda: torch_step(net, opt, xb, yb, weights, config.clipnorm)}


def print_profile(preset, config, data, split, seed: int) -> None:
    keras_calls, per_epoch = keras_parts(preset, config, data, split)
    torch_calls = torch_parts(preset, config, data, split, seed)
    parts = interleaved_ms({k: (keras_calls[k], torch_calls[k]) for k in keras_calls})
    print(f"\nwhere a training step's time goes (batch {config.batch_size}; median ms per call, the two sides' "
          f"calls alternating):")
    print(f"{'':<46} {'Keras':>9} {'PyTorch':>9} {'PyTorch / Keras':>16}")
    for part, (k, t) in parts.items():
        print(f"{part:<46} {k:9.2f} {t:9.2f} {t / k:15.2f}x")
    print(f"\nKeras's fit loop, ms per epoch ({int(np.ceil(len(split.train) / config.batch_size))} steps; the three "
          f"middle lines alternating, medians of 3):")
    for part, ms in per_epoch.items():
        print(f"{part:<46} {ms:9.0f}")
    loop = (per_epoch["fit epoch (steady state)"] - per_epoch["the epoch's steps, train_step in a Python loop"]
            - per_epoch["validation pass (evaluate)"])
    print(f"{'fit loop besides the steps and validation':<46} {loop:9.0f}")


def step_gflop(preset, batch: int) -> float:
    """GFLOP of one training step of the preset's network: 2 per multiply-add of its convolutions and dense
    layers in the forward pass, times 3 (the backward pass takes a gradient for the inputs and one for the
    weights, each about the forward's cost)."""
    import keras

    from mtl_core.engine.models.builder import build_model

    model = build_model(preset.model, {t.name: t for t in preset.tasks})
    flops = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            flops += 2 * batch * int(np.prod(layer.output.shape[1:3])) * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Dense):
            flops += 2 * batch * int(np.prod(layer.kernel.shape))
    return 3 * flops / 1e9


def matmul_gflops(n: int = 2048, calls: int = 20) -> tuple[float, float]:
    """This CPU's float32 matrix-multiply rate in GFLOP/s, TensorFlow's and PyTorch's (median of ``calls``):
    about the most a dense network's step can reach on it."""
    import tensorflow as tf

    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    tf_mm = tf.function(lambda: tf.matmul(a, b))
    at, bt = torch.randn(n, n), torch.randn(n, n)
    rates = []
    for call in (lambda: tf_mm().numpy(), lambda: torch.mm(at, bt)):
        call()
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        rates.append(2 * n ** 3 / float(np.median(times)) / 1e9)
    return rates[0], rates[1]


def print_ceiling(preset, config, torch_images_per_s: float) -> None:
    """What the goal asks of this CPU: the rate of arithmetic 1.5x PyTorch's throughput needs, against the
    fastest float32 matrix multiply either library does here."""
    gflop = step_gflop(preset, config.batch_size)
    tf_rate, torch_rate = matmul_gflops()
    torch_rate_used = torch_images_per_s / config.batch_size * gflop
    needed = 1.5 * torch_rate_used
    best = max(tf_rate, torch_rate)
    print(f"\nwhat the goal asks of this CPU (multiply-adds of the convolutions and dense layers only):\n"
          f"  a training step is {gflop:.1f} GFLOP (batch {config.batch_size}); PyTorch runs it at "
          f"{torch_rate_used:.0f} GFLOP/s, {100 * torch_rate_used / best:.0f}% of the fastest float32 matrix "
          f"multiply here (2048x2048: TensorFlow {tf_rate:.0f}, PyTorch {torch_rate:.0f} GFLOP/s)\n"
          f"  1.5x PyTorch's throughput needs {needed:.0f} GFLOP/s, {100 * needed / best:.0f}% of that multiply"
          + (": out of reach at float32 on this CPU, whatever the framework" if needed > best else ""))


def one_seed(preset, data_options: dict, args, seed: int, keras_first: bool) -> dict:
    """Both sides trained once with ``seed`` (the Keras side first or second, alternating between seeds, so a
    drift in the machine's speed does not favour one side): throughputs and test metrics."""
    # both sides keep the epoch of the lowest total validation loss (the PyTorch side knows no other criterion)
    config = make_config(preset, data=data_options, epochs=args.epochs, seed=seed, patience=10_000,
                         lr_patience=10_000, precision=args.keras_precision, monitor="loss")
    data = load_training_data(preset, config)
    split = datasets.split(preset, data, config)
    x = data.x if data.x.ndim == 4 else data.x[..., None]
    test = np.asarray(split.test)
    out: dict = {"config": config, "data": data, "split": split}

    def keras_side():
        import tensorflow as tf

        epochs: list[float] = []
        trainer = Trainer(preset, config,
                          subscribers=[lambda e: epochs.append(e["seconds"]) if e["event"] == "epoch" else None])
        result = trainer.run(data)
        call = tf.function(lambda i: result.model(i, training=False), autograph=False)
        predict_in_batches(call, x[test[:512]])  # trace
        t0 = time.perf_counter()
        pred = predict_in_batches(call, x[test])
        out["keras"] = {"fit": result.card["training"]["seconds"], "later epochs": epochs[1:],
                        "predict": time.perf_counter() - t0, "pred": pred}

    def torch_side():
        net, fit, epochs = train_torch(preset, config, data, split, seed)
        torch_predict(net, x[test[:512]])
        t0 = time.perf_counter()
        pred = torch_predict(net, x[test])
        out["torch"] = {"fit": fit, "later epochs": epochs[1:], "predict": time.perf_counter() - t0, "pred": pred}

    for side in ((keras_side, torch_side) if keras_first else (torch_side, keras_side)):
        side()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="shapes-3head")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n", type=int, help="examples (default: the preset's)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 42, 43, ...: each trains both sides once")
    ap.add_argument("--keras-precision", default="float32")
    ap.add_argument("--profile", action="store_true",
                    help="also break a training step's time into input, forward, backward, optimiser, fit loop")
    args = ap.parse_args()
    preset = get_preset(args.preset)
    data_options = {**preset.data_defaults, **({"n": args.n} if args.n else {})}
    runs = [one_seed(preset, data_options, args, 42 + i, keras_first=i % 2 == 0) for i in range(args.seeds)]
    config, split = runs[0]["config"], runs[0]["split"]
    n_train, test = len(split.train), np.asarray(split.test)
    print(f"machine: {machine()}; PyTorch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{preset.name}: {n_train} training / {len(split.val)} validation / {len(test)} test images, "
          f"batch {config.batch_size}, {config.epochs} epochs, Adam lr {config.lr}, clipnorm {config.clipnorm}, "
          f"loss weights {dict(config.loss_weights)}; Keras precision {args.keras_precision}, PyTorch float32; "
          f"seeds {', '.join(str(42 + i) for i in range(args.seeds))}, the side that goes first alternating\n")

    def stat(values) -> str:
        values = np.asarray(values, dtype=float)
        return f"{values.mean():.4g} ± {values.std():.2g}" if len(values) > 1 else f"{values[0]:.4g}"

    images = n_train * config.epochs
    rows = [("training images/s (whole fit, validation included)",
             [images / r[side]["fit"] for r in runs for side in ("keras",)],
             [images / r["torch"]["fit"] for r in runs]),
            ("training images/s (epochs after the first)",
             [n_train / np.median(r["keras"]["later epochs"]) for r in runs],
             [n_train / np.median(r["torch"]["later epochs"]) for r in runs]),
            ("batched prediction images/s (test split, batches of 512)",
             [len(test) / r["keras"]["predict"] for r in runs], [len(test) / r["torch"]["predict"] for r in runs])]
    for task in preset.tasks:
        k = [metric(task, np.asarray(r["data"].y[task.name])[r["split"].test], r["keras"]["pred"][task.name])
             for r in runs]
        t = [metric(task, np.asarray(r["data"].y[task.name])[r["split"].test], r["torch"]["pred"][task.name])
             for r in runs]
        rows.append((f"test {task.name} {k[0][0]}", [v for _, v in k], [v for _, v in t]))
    print(f"{'':<58} {'Keras (Trainer)':>18} {'PyTorch eager':>18} {'Keras / PyTorch':>16}")
    for label, k, t in rows:
        print(f"{label:<58} {stat(k):>18} {stat(t):>18} {np.mean(k) / np.mean(t):15.2f}x")
    ratio = rows[0][1], rows[0][2]
    per_seed = ", ".join(f"{a / b:.2f}x" for a, b in zip(*ratio, strict=True))
    print(f"\ngoal: Keras training throughput at least 1.5x PyTorch's; whole fit, per seed: {per_seed}")
    later = float(np.mean(rows[1][2]))  # steady state; with one epoch there is none: the whole fit's
    print_ceiling(preset, config, later if np.isfinite(later) else float(np.mean(rows[0][2])))
    if args.profile:
        print_profile(preset, config, runs[0]["data"], split, 42)


if __name__ == "__main__":
    main()
