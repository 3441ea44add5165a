"""Differentiable search on NAS-Bench-201 under a BPE budget: DARTS (first and second order) and GDAS.

The supernet (:class:`harness.models.nb201_supernet.NB201SuperNet`) is built with the BPE's
channels and cells per stage and trained at its image size, precision, batch size and epochs on
NB201's ``cifar10-valid`` protocol: weights on the train half (a ``fraction`` of it), the
architecture on the valid half (``valid_images`` of it), as NB201's search scripts split them.
Each step first updates ``alpha`` (Adam, lr 3e-4, betas (0.5, 0.999), weight decay 1e-3, the
DARTS values), then the weights (SGD with momentum, cosine schedule, the BPE's weight decay,
gradient clipping at 5):

- ``darts-v1``: first-order alpha gradient (the validation loss at the current weights);
- ``darts-v2``: DARTS's second-order approximation, the validation loss at the weights after one
  virtual SGD step (momentum and weight decay included), with the Hessian-vector product by
  finite differences (epsilon = 0.01 / ||grad||);
- ``gdas``: one op per edge sampled by hard Gumbel-softmax, the temperature annealed linearly
  from ``tau_max`` to ``tau_min`` over the epochs.

The derived cell (argmax of alpha per edge, ``none`` included) is looked up in the benchmark.
DARTS collapsing to all-skip cells on NB201 (54.30 % CIFAR-10 test in the NB201 paper) is the
published behaviour and is not prevented here.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..bpe.config import BPEConfig
from ..bpe.trainer import _autocast, _prepare, hardware, load_train_data
from ..data import stats_for
from ..errors import HarnessError
from ..models.nb201_supernet import NB201SuperNet
from ..spaces.nb201 import EDGES, OPS

log = logging.getLogger(__name__)

METHODS = ("darts-v1", "darts-v2", "gdas")


@dataclass
class DifferentiableResult:
    method: str
    seed: int
    ops: tuple[int, ...]
    arch: str
    alpha: list  # softmax(alpha) per edge after the last epoch (6 x 5)
    history: list = field(default_factory=list)  # per epoch: loss, acc, entropy, arch, tau, alpha
    wall_s: float = math.nan
    hardware: str = ""
    device: str = ""
    config: str = ""


def _entropy(alpha: torch.Tensor) -> float:
    p = F.softmax(alpha.detach().float(), dim=-1)
    return float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean())


def _grads(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _second_order_alpha_grad(model: NB201SuperNet, w_opt: torch.optim.SGD, xw, yw, xa, ya, xi: float) -> torch.Tensor:
    """DARTS's unrolled gradient: dL_val(w', a)/da - xi * (dL_train(w+, a)/da - dL_train(w-, a)/da) / (2 eps)."""
    weights, alpha = model.weight_parameters(), model.alpha
    group = w_opt.param_groups[0]
    momentum, wd = group["momentum"], group["weight_decay"]
    backup = [w.detach().clone() for w in weights]
    grads = _grads(F.cross_entropy(model(xw), yw), weights)
    with torch.no_grad():  # the virtual step w' = w - xi * (momentum buffer + grad + wd * w)
        for w, g in zip(weights, grads):
            buf = w_opt.state.get(w, {}).get("momentum_buffer")
            step = g + wd * w + (momentum * buf if buf is not None else 0.0)
            w.sub_(xi * step)
    val = _grads(F.cross_entropy(model(xa), ya), [alpha] + weights)
    d_alpha, d_w = val[0], val[1:]
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    norm = torch.sqrt(sum((g * g).sum() for g in d_w))
    eps = 0.01 / float(norm.clamp_min(1e-12))
    with torch.no_grad():
        for w, g in zip(weights, d_w):
            w.add_(eps * g)
    g_pos = _grads(F.cross_entropy(model(xw), yw), [alpha])[0]
    with torch.no_grad():
        for w, g in zip(weights, d_w):
            w.sub_(2 * eps * g)
    g_neg = _grads(F.cross_entropy(model(xw), yw), [alpha])[0]
    with torch.no_grad():
        for w, b in zip(weights, backup):
            w.copy_(b)
    return d_alpha - xi * (g_pos - g_neg) / (2 * eps)


def search(method: str, config: BPEConfig, seed: int = 0, device: torch.device | str | None = None, *,
           arch_lr: float = 3e-4, arch_wd: float = 1e-3, tau_max: float = 10.0, tau_min: float = 0.1,
           grad_clip: float = 5.0, progress: bool = False) -> DifferentiableResult:
    """One differentiable search under ``config``; see the module docstring."""
    if method not in METHODS:
        raise HarnessError(f"differentiable method {method!r} is not known", f"use one of {', '.join(METHODS)}")
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_train_data("cifar10", config.fraction, config.valid_images or None, device=device)
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = NB201SuperNet(C=config.channels, N=config.layers, num_classes=data.num_classes).to(device)
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=config.lr, momentum=config.momentum,
                            weight_decay=config.weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_wd)
    n, n_valid = len(data.train_y), len(data.valid_y)
    steps = max(1, math.ceil(n / config.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=config.epochs * steps)
    gen = torch.Generator().manual_seed(seed)
    mean, std = (t.to(device)[None, :, None, None] for t in stats_for("cifar10"))
    mode = "gumbel" if method == "gdas" else "softmax"
    history = []
    for epoch in range(config.epochs):
        tau = tau_max - (tau_max - tau_min) * epoch / max(1, config.epochs - 1) if mode == "gumbel" else 1.0
        model.train()
        order = torch.randperm(n, generator=gen).to(device)
        vorder = torch.randperm(n_valid, generator=gen).to(device)
        loss_sum, correct = 0.0, 0
        bar = tqdm(range(steps), desc=f"{method} epoch {epoch + 1}/{config.epochs}", unit="step",
                   disable=not progress, leave=False)
        for step in bar:
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            vstart = (step * config.batch_size) % n_valid
            vidx = vorder[vstart:vstart + config.batch_size]
            xw = _prepare(data.train_x[idx], config, mean, std, True, gen, False)
            xa = _prepare(data.valid_x[vidx], config, mean, std, True, gen, False)
            yw, ya = data.train_y[idx], data.valid_y[vidx]
            # architecture step
            a_opt.zero_grad(set_to_none=True)
            if method == "darts-v2":
                model.alpha.grad = _second_order_alpha_grad(model, w_opt, xw, yw, xa, ya, sched.get_last_lr()[0])
            else:
                with _autocast(device, config.precision):
                    loss_a = F.cross_entropy(model(xa, mode, tau).float(), ya)
                model.alpha.grad = _grads(loss_a, [model.alpha])[0]
            a_opt.step()
            # weight step
            w_opt.zero_grad(set_to_none=True)
            with _autocast(device, config.precision):
                logits = model(xw, mode, tau).float()
                loss = F.cross_entropy(logits, yw)
            loss.backward()
            model.alpha.grad = None
            torch.nn.utils.clip_grad_norm_(model.weight_parameters(), grad_clip)
            w_opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(yw)
            correct += int((logits.detach().argmax(1) == yw).sum())
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": 100.0 * correct / n,
                        "alpha_entropy": _entropy(model.alpha), "arch": model.arch(), "tau": tau,
                        "alpha": F.softmax(model.alpha.detach().float(), -1).cpu().tolist()})
        log.info("%s seed %d epoch %d: loss %.3f acc %.1f %% entropy %.3f %s", method, seed, epoch + 1,
                 history[-1]["train_loss"], history[-1]["train_acc"], history[-1]["alpha_entropy"], model.arch())
    return DifferentiableResult(method, seed, model.genotype(), model.arch(),
                                F.softmax(model.alpha.detach().float(), -1).cpu().tolist(), history,
                                time.perf_counter() - start, hardware(device), str(device), config.label)


def runs_frame(results: list[DifferentiableResult], bench) -> pd.DataFrame:
    """One row per run in the shape of ``nas-harness search``'s runs (estimator ``weight-sharing``)."""
    from .runner import accuracy_columns

    from ..spaces.nb201 import NB201Space

    accs = accuracy_columns(bench)
    space = NB201Space(bench.arch_strs())
    rows = []
    for r in results:
        index = space.index(r.arch)
        row = {"run": r.seed, "seed": r.seed, "strategy": r.method, "estimator": "weight-sharing",
               "dataset": "cifar10", "budget": r.config, "index": index, "arch": r.arch, "simulated_s": 0.0,
               "wall_s": r.wall_s, "cells": 1, "distinct": 1, "failures": 0, "hardware": r.hardware}
        row.update({label: float(values[index]) for label, values in accs.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def alpha_frame(results: list[DifferentiableResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        for h in r.history:
            for e, (src, dst) in enumerate(EDGES):
                for k, op in enumerate(OPS):
                    rows.append({"method": r.method, "seed": r.seed, "epoch": h["epoch"], "edge": f"{src}->{dst}",
                                 "op": op, "weight": h["alpha"][e][k]})
    return pd.DataFrame(rows)


def plot_alpha(alpha: pd.DataFrame, out: Path, name: str = "alpha"):
    """softmax(alpha) per edge over the epochs, first run of each method."""
    from ..report.tables import new_figure, save_figure

    fig, axes = new_figure(figsize=(9.0, 5.0), nrows=2, ncols=3)
    first = alpha[alpha.seed == alpha.seed.min()]
    for ax, edge in zip(axes.flat, [f"{s}->{d}" for s, d in EDGES]):
        for (method, op), g in first[first.edge == edge].groupby(["method", "op"], sort=False):
            ax.plot(g.epoch, g.weight, marker="o", ms=2, lw=1,
                    ls={"darts-v1": "-", "darts-v2": "--", "gdas": ":"}[method], label=f"{method} {op}")
        ax.set_title(f"edge {edge}", fontsize=8)
        ax.set_ylim(0, 1)
    axes.flat[0].legend(fontsize=5, ncol=1)
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel("softmax(alpha)", fontsize=8)
    return save_figure(fig, out, name)


def write_differentiable(results: list[DifferentiableResult], bench, out: Path, context: str) -> pd.DataFrame:
    """``out/runs.{csv,md}``, ``out/summary.{csv,md}`` (beside NB201's published row), ``out/alpha.csv``
    and the alpha plot. Returns the summary."""
    from ..report.search import write_search_report
    from ..report.tables import write_table

    runs = runs_frame(results, bench)
    summary = write_search_report(runs, out, None, context, options=results[0].config)
    alpha = alpha_frame(results)
    write_table(alpha, out, "alpha", "softmax(alpha) per epoch, edge and op", context)
    plot_alpha(alpha, out)
    return summary
