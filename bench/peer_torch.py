"""The Trainer against PyTorch eager on the same model, data and budget (issue 16, part 1).

For an image preset (shapes-3head by default), in one run:

- the studio's ``Trainer`` (Keras, float32 here so both sides compute alike; ``--keras-precision auto`` adds
  the precision the studio picks on this CPU) trains the preset's model for ``--epochs`` epochs, early stopping
  and the learning-rate schedule switched off;
- the same network in PyTorch eager (``TorchNet`` below interprets the same ModelSpec: the layer plan, the
  stop-gradient, the head links, dropout, the output activations and Rescale), with the same loss weights,
  data, split, standardisation, batch size, epochs, Adam (lr, Keras's epsilon 1e-7, per-tensor gradient
  clipping as Keras's ``clipnorm``) and a validation pass per epoch, as ``fit`` does.

Printed: training images/s (epochs x training examples / the fit's wall time, validation included), batched
prediction images/s over the test split (batches of 512), and each head's test metric, with the ratios
Keras / PyTorch. The goal is the Trainer at 1.5x PyTorch's training throughput or more, with metrics equal
within noise.

    pip install -r requirements-bench.txt
    python bench/peer_torch.py [--preset shapes-3head] [--epochs 5] [--n 3000] [--keras-precision auto]
"""

from __future__ import annotations

import argparse
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


def torch_plan(plan, channels: int, size: int | None) -> tuple[nn.Module, int, int | None]:
    """(the plan's layers as a torch module, output channels or features, spatial size or None once flat)."""
    layers: list[nn.Module] = []
    for step in plan:
        op, args = parse_step(step)
        if op == "conv":
            kernel = int(args[1]) if len(args) > 1 else 3
            layers += [nn.Conv2d(channels, int(args[0]), kernel, padding="same"), nn.ReLU()]
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
        self.backbone, channels, size = torch_plan(spec.backbone, c, h)
        self.spec, self.tasks, self.target_scale = spec, tasks, target_scale
        self.trunks, self.hiddens, self.outs, self.drops = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict(), {}
        widths: dict[str, int] = {}
        for head in spec.build_order():
            trunk, width, _ = torch_plan(head.trunk, channels, size)
            width += sum(widths[s] for s in head.inputs_from)
            hidden, width, _ = torch_plan(head.hidden, width, None)
            widths[head.task] = width
            self.trunks[head.task], self.hiddens[head.task] = trunk, hidden
            self.drops[head.task] = head.dropout
            self.outs[head.task] = nn.Linear(width, tasks[head.task].head_kind.units(tasks[head.task]))
        self.dropout = nn.ModuleDict({k: nn.Dropout(p) for k, p in self.drops.items() if p})
        keras_init(self)

    def forward(self, x):
        shared = self.backbone((x - self.mean) / self.std)
        features, out = {}, {}
        for head in self.spec.build_order():
            z = shared.detach() if head.detach else shared
            z = self.trunks[head.task](z)
            if head.inputs_from:
                z = torch.cat([z] + [features[s] for s in head.inputs_from], dim=1)
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


def train_torch(preset, config, data, split, seed: int) -> tuple[TorchNet, float]:
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
    weights = dict(config.loss_weights)
    train_idx, val_idx = np.asarray(split.train), np.asarray(split.val)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        net.train()
        order = train_idx[rng.permutation(len(train_idx))]
        for start in range(0, len(order), config.batch_size):
            idx = torch.from_numpy(order[start:start + config.batch_size])
            opt.zero_grad(set_to_none=True)
            loss = torch_losses(net, net(xt[idx]), {k: v[idx] for k, v in ys.items()}, weights)
            loss.backward()
            for p in net.parameters():  # Keras's clipnorm: each gradient tensor on its own
                if p.grad is not None:
                    torch.nn.utils.clip_grad_norm_([p], config.clipnorm)
            opt.step()
        net.eval()
        with torch.no_grad():  # the validation pass fit makes every epoch
            for start in range(0, len(val_idx), 512):
                idx = torch.from_numpy(val_idx[start:start + 512])
                torch_losses(net, net(xt[idx]), {k: v[idx] for k, v in ys.items()}, weights)
    return net, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="shapes-3head")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--n", type=int, help="examples (default: the preset's)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keras-precision", default="float32")
    args = ap.parse_args()
    preset = get_preset(args.preset)
    data_options = {**preset.data_defaults, **({"n": args.n} if args.n else {})}
    config = make_config(preset, data=data_options, epochs=args.epochs, seed=args.seed, patience=10_000,
                         lr_patience=10_000, precision=args.keras_precision)
    data = load_training_data(preset, config)
    split = datasets.split(preset, data, config)
    n_train = len(split.train)
    print(f"machine: {machine()}; PyTorch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{preset.name}: {n_train} training / {len(split.val)} validation / {len(split.test)} test images, "
          f"batch {config.batch_size}, {config.epochs} epochs, Adam lr {config.lr}, clipnorm {config.clipnorm}, "
          f"loss weights {dict(config.loss_weights)}; Keras precision {args.keras_precision}, PyTorch float32\n")

    result = Trainer(preset, config).run(data)
    keras_fit = result.card["training"]["seconds"]
    x = data.x if data.x.ndim == 4 else data.x[..., None]
    test = np.asarray(split.test)
    import tensorflow as tf

    call = tf.function(lambda i: result.model(i, training=False), autograph=False)
    predict_in_batches(call, x[test[:512]])  # trace
    t0 = time.perf_counter()
    keras_pred = predict_in_batches(call, x[test])
    keras_predict_s = time.perf_counter() - t0

    net, torch_fit = train_torch(preset, config, data, split, args.seed)
    torch_predict(net, x[test[:512]])
    t0 = time.perf_counter()
    torch_pred = torch_predict(net, x[test])
    torch_predict_s = time.perf_counter() - t0

    images = n_train * config.epochs
    rows = [("training images/s (fit, validation included)", images / keras_fit, images / torch_fit, True),
            ("batched prediction images/s (test split, batches of 512)", len(test) / keras_predict_s,
             len(test) / torch_predict_s, True)]
    for task in preset.tasks:
        name, k = metric(task, np.asarray(data.y[task.name])[test], keras_pred[task.name])
        _, t = metric(task, np.asarray(data.y[task.name])[test], torch_pred[task.name])
        rows.append((f"test {task.name} {name}", k, t, name != "mae"))
    print(f"{'':<58} {'Keras (Trainer)':>16} {'PyTorch eager':>14} {'Keras / PyTorch':>16}")
    for label, k, t, _ in rows:
        print(f"{label:<58} {k:16.4g} {t:14.4g} {k / t:15.2f}x")
    print(f"\nfit wall time: Keras {keras_fit:.1f} s, PyTorch {torch_fit:.1f} s; goal: Keras training throughput "
          f"at least 1.5x PyTorch's ({images / keras_fit / (images / torch_fit):.2f}x here)")


if __name__ == "__main__":
    main()
