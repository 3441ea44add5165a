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

``arch_data="train-split"`` instead splits the (fraction of the) train half itself 50/50, seeded and
class-blind: weights on one half, alpha on the other; the valid half is then unused.
fp16/bf16 autocast applies to the first-order steps (fp16 with gradient scalers on CUDA); the
second-order alpha gradient is computed in fp32.

The derived cell (argmax of alpha per edge, ``none`` included) is looked up in the benchmark.
DARTS collapsing to all-skip cells on NB201 (54.30 % CIFAR-10 test in the NB201 paper) is the
published behaviour and is not prevented here.

Every run of ``nas-harness supernet`` (:func:`stored_search`) is committed to the run store
(kind ``supernet``) the moment it finishes, keyed by everything that determines it (see
:func:`run_key`): asking for the same run again reads it back instead of training, so a command
interrupted after some runs, or one whose ``--out`` could not be written, trains only what is
missing when it is run again. :func:`search` itself (and the ``run_*`` wrappers) always trains.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..bpe.config import BPEConfig
from ..bpe.trainer import _autocast, _prepare, hardware, load_train_data
from ..data import stats_for
from ..errors import HarnessError
from ..executors import Executor, LocalExecutor
from ..models.nb201_supernet import NB201SuperNet
from ..paths import portable_path
from ..runstore import RunStore, register_run_kind
from ..spaces.nb201 import EDGES, OPS

log = logging.getLogger(__name__)

METHODS = ("darts-v1", "darts-v2", "gdas")
ARCH_DATA = ("valid", "train-split")  # where alpha's batches come from (see the module docstring)
DEFAULT_BPE = "e10-b64-lr0.025-l1-c8-i16-f0.1-v2000"
KIND = "supernet"  # the run store's kind of these training runs
#: the version of :func:`search`'s training; bump it whenever a change alters what a run computes,
#: so that runs stored by the older code are never read back as this code's
VERSION = "2"  # 2: random numbers drawn on the training device (CUDA changed; CPU draws identical)
register_run_kind(KIND, VERSION)
OPTION_DEFAULTS = {"arch_lr": 3e-4, "arch_wd": 1e-3, "tau_max": 10.0, "tau_min": 0.1, "grad_clip": 5.0,
                   "lr_min": 0.0, "arch_data": "valid"}  # :func:`search`'s own defaults


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
    alpha_init: list = field(default_factory=list)  # softmax(alpha) before the first step
    arch_data: str = "valid"
    steps: int = 0  # optimisation steps (each: one alpha step and one weight step)
    cached: bool = False  # read back from the run store (wall_s, hardware: of the run that trained it)


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


def _check(method: str, arch_data: str, tau_max: float, tau_min: float, arch_lr: float, arch_wd: float,
           grad_clip: float, lr_min: float) -> None:
    if method not in METHODS:
        raise HarnessError(f"differentiable method {method!r} is not known", f"use one of {', '.join(METHODS)}")
    if arch_data not in ARCH_DATA:
        raise HarnessError(f"arch_data {arch_data!r} is not known", f"use one of {', '.join(ARCH_DATA)}")
    if not 0 < tau_min <= tau_max:
        raise HarnessError(f"tau_min={tau_min}, tau_max={tau_max}: need 0 < tau_min <= tau_max",
                           "GDAS anneals tau from tau_max down to tau_min (NB201: 10 to 0.1)")
    if not (arch_lr > 0 and arch_wd >= 0 and grad_clip > 0 and lr_min >= 0
            and all(math.isfinite(v) for v in (arch_lr, arch_wd, grad_clip, lr_min, tau_max))):
        raise HarnessError(f"arch_lr={arch_lr}, arch_wd={arch_wd}, grad_clip={grad_clip}, lr_min={lr_min} out of range",
                           "need finite arch_lr > 0, arch_wd >= 0, grad_clip > 0, lr_min >= 0")


def search(method: str, config: BPEConfig, seed: int = 0, device: torch.device | str | None = None, *,
           arch_lr: float = 3e-4, arch_wd: float = 1e-3, tau_max: float = 10.0, tau_min: float = 0.1,
           grad_clip: float = 5.0, lr_min: float = 0.0, arch_data: str = "valid",
           progress: bool = False) -> DifferentiableResult:
    """One differentiable search under ``config``; see the module docstring.

    ``lr_min``: the end of the weights' cosine schedule (NB201's search used 0.001 from 0.025).
    """
    _check(method, arch_data, tau_max, tau_min, arch_lr, arch_wd, grad_clip, lr_min)
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_train_data("cifar10", config.fraction, config.valid_images or None, device=device)
    start = time.perf_counter()
    torch.manual_seed(seed)
    gen = torch.Generator(device=device).manual_seed(seed)  # drawn where the data is (CPU: as before)
    if arch_data == "valid":
        wx, wy, ax, ay = data.train_x, data.train_y, data.valid_x, data.valid_y
    else:
        if len(data.train_y) < 2:
            raise HarnessError(f"{len(data.train_y)} training image(s) cannot be split in two", "raise the fraction")
        perm = torch.randperm(len(data.train_y), generator=gen, device=gen.device).to(device)
        half = len(perm) // 2
        wx, wy = data.train_x[perm[:half]], data.train_y[perm[:half]]
        ax, ay = data.train_x[perm[half:]], data.train_y[perm[half:]]
    model = NB201SuperNet(C=config.channels, N=config.layers, num_classes=data.num_classes).to(device)
    alpha_init = F.softmax(model.alpha.detach().float(), -1).cpu().tolist()
    w_opt = torch.optim.SGD(model.weight_parameters(), lr=config.lr, momentum=config.momentum,
                            weight_decay=config.weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_wd)
    n, n_arch = len(wy), len(ay)
    steps = max(1, math.ceil(n / config.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=config.epochs * steps, eta_min=lr_min)
    scale = device.type == "cuda" and config.precision == "fp16"
    w_scaler = torch.amp.GradScaler("cuda", enabled=scale)
    a_scaler = torch.amp.GradScaler("cuda", enabled=scale)
    mean, std = (t.to(device)[None, :, None, None] for t in stats_for("cifar10"))
    mode = "gumbel" if method == "gdas" else "softmax"
    history = []
    for epoch in range(config.epochs):
        tau = tau_max - (tau_max - tau_min) * epoch / max(1, config.epochs - 1) if mode == "gumbel" else 1.0
        model.train()
        order = torch.randperm(n, generator=gen, device=gen.device).to(device)
        aorder = torch.randperm(n_arch, generator=gen, device=gen.device).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bar = tqdm(range(steps), desc=f"{method} seed {seed} epoch {epoch + 1}/{config.epochs}", unit="step",
                   disable=not progress, leave=False)
        for step in bar:
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            astart = (step * config.batch_size) % n_arch
            aidx = aorder[astart:astart + config.batch_size]
            xw = _prepare(wx[idx], config, mean, std, True, gen, False)
            xa = _prepare(ax[aidx], config, mean, std, True, gen, False)
            yw, ya = wy[idx], ay[aidx]
            # architecture step
            a_opt.zero_grad(set_to_none=True)
            if method == "darts-v2":
                model.alpha.grad = _second_order_alpha_grad(model, w_opt, xw, yw, xa, ya, sched.get_last_lr()[0])
                a_opt.step()
            else:
                with _autocast(device, config.precision):
                    loss_a = F.cross_entropy(model(xa, mode, tau).float(), ya)
                model.alpha.grad = _grads(a_scaler.scale(loss_a), [model.alpha])[0]
                a_scaler.step(a_opt)
                a_scaler.update()
            # weight step
            w_opt.zero_grad(set_to_none=True)
            with _autocast(device, config.precision):
                logits = model(xw, mode, tau).float()
                loss = F.cross_entropy(logits, yw)
            w_scaler.scale(loss).backward()
            model.alpha.grad = None
            w_scaler.unscale_(w_opt)
            torch.nn.utils.clip_grad_norm_(model.weight_parameters(), grad_clip)
            w_scaler.step(w_opt)
            w_scaler.update()
            sched.step()
            loss_sum += loss.detach() * len(yw)
            correct += (logits.detach().argmax(1) == yw).sum()
        history.append({"epoch": epoch + 1, "train_loss": float(loss_sum) / n, "train_acc": 100.0 * int(correct) / n,
                        "alpha_entropy": _entropy(model.alpha), "arch": model.arch(), "tau": tau,
                        "lr": sched.get_last_lr()[0],
                        "alpha": F.softmax(model.alpha.detach().float(), -1).cpu().tolist()})
        log.info("%s seed %d epoch %d: loss %.3f acc %.1f %% entropy %.3f %s", method, seed, epoch + 1,
                 history[-1]["train_loss"], history[-1]["train_acc"], history[-1]["alpha_entropy"], model.arch())
    return DifferentiableResult(method, seed, model.genotype(), model.arch(),
                                F.softmax(model.alpha.detach().float(), -1).cpu().tolist(), history,
                                time.perf_counter() - start, hardware(device), str(device), config.label,
                                alpha_init, arch_data, steps * config.epochs)


def _options(method: str, options: dict) -> dict:
    """:func:`search`'s options with its defaults filled in, as plain numbers (one key per run)."""
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise TypeError(f"search() got an unexpected keyword argument {unknown[0]!r}")
    opts = {**OPTION_DEFAULTS, **options}
    opts = {k: (v if k == "arch_data" else float(v)) for k, v in opts.items()}
    _check(method, **opts)
    return opts


def run_key(method: str, config: BPEConfig, seed: int, device: torch.device, data, options: dict) -> dict:
    """Everything that determines one supernet run: the method, the BPE (its full label), the seed,
    the data (dataset, images, split protocol, image counts), the optimisers' settings, the
    device type, torch version, dtype and this code's :data:`VERSION`."""
    opts = _options(method, options)
    if method != "gdas":  # the temperature is GDAS's alone: DARTS runs do not depend on it
        opts.pop("tau_max"), opts.pop("tau_min")
    return {"method": method, "config": config.label, "seed": int(seed), "dataset": "cifar10",
            "split": data.split, "images": portable_path(data.source) if data.source else "",
            "train_images": int(len(data.train_y)), "valid_images": int(len(data.valid_y)), **opts,
            "device": torch.device(device).type, "torch": torch.__version__, "dtype": "float32", "version": VERSION}


def _to_json(result: DifferentiableResult) -> dict:
    record = dataclasses.asdict(result)
    record.pop("cached")
    return record


def _from_json(record: dict) -> DifferentiableResult:
    names = {f.name for f in dataclasses.fields(DifferentiableResult)} - {"cached"}
    values = {k: v for k, v in record.items() if k in names}
    values["ops"] = tuple(values["ops"])
    return DifferentiableResult(**values, cached=True)


def stored_search(method: str, config: BPEConfig, seed: int = 0, device: torch.device | str | None = None, *,
                  store: RunStore | None = None, progress: bool = False, **options) -> DifferentiableResult:
    """:func:`search` through the run store: a run stored under the same :func:`run_key` is read
    back (``cached=True``, no training); otherwise it is trained and committed the moment it
    finishes. A run interrupted mid-training stores nothing and is trained again."""
    opts = _options(method, options)
    device = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    store = store or RunStore()
    data = load_train_data("cifar10", config.fraction, config.valid_images or None, device=device)
    key = run_key(method, config, seed, device, data, opts)
    record = store.get_run(KIND, key)
    if record is not None:
        log.info("%s seed %d under %s: read back from the run store %s", method, seed, config.label, store.path)
        return _from_json(record)
    result = search(method, config, seed, device, progress=progress, **opts)
    store.put_run(KIND, key, _to_json(result), result.wall_s)
    return result


@dataclass(frozen=True)
class SupernetTask:
    """One supernet search for a worker (``search``'s arguments; ``options`` as sorted pairs)."""

    method: str
    config: BPEConfig
    seed: int
    device: str
    options: tuple = ()
    progress: bool = False

    def __repr__(self) -> str:
        return f"{self.method} seed {self.seed} under {self.config.label}"


def run_supernet_task(task: SupernetTask) -> DifferentiableResult:
    return search(task.method, task.config, task.seed, torch.device(task.device), progress=task.progress,
                  **dict(task.options))


def stored_searches(tasks: list[SupernetTask], store: RunStore, executor: Executor | None = None
                    ) -> list[DifferentiableResult]:
    """:func:`stored_search` for many runs: the stored ones read back, the others handed to
    ``executor`` (default: this process) and committed here, each the moment it comes back."""
    executor = executor or LocalExecutor()
    results: list[DifferentiableResult | None] = [None] * len(tasks)
    todo, keys = [], []
    for i, task in enumerate(tasks):
        opts = _options(task.method, dict(task.options))
        data = load_train_data("cifar10", task.config.fraction, task.config.valid_images or None)  # CPU: key only
        key = run_key(task.method, task.config, task.seed, torch.device(task.device), data, opts)
        record = store.get_run(KIND, key)
        if record is not None:
            results[i] = _from_json(record)
        else:
            todo.append(dataclasses.replace(task, progress=task.progress and isinstance(executor, LocalExecutor)))
            keys.append((i, key))
    for j, result in executor.run(run_supernet_task, todo):
        i, key = keys[j]
        store.put_run(KIND, key, _to_json(result), result.wall_s)  # the driver alone writes the run store
        results[i] = result
    return results


def run_differentiable(method: str, config: BPEConfig, seed: int = 0, device: torch.device | str | None = None,
                       **options) -> DifferentiableResult:
    """``search`` under its public name: ``method`` in :data:`METHODS`; ``options`` as :func:`search`."""
    return search(method, config, seed, device, **options)


def run_darts(config: BPEConfig, order: int = 1, seed: int = 0, device: torch.device | str | None = None,
              **options) -> DifferentiableResult:
    """DARTS on the NB201 supernet: ``order=1`` (DARTS-V1) or ``order=2`` (DARTS-V2, unrolled)."""
    if order not in (1, 2):
        raise HarnessError(f"DARTS order {order!r} is not 1 or 2", "use order=1 (first order) or order=2 (second)")
    return search(f"darts-v{order}", config, seed, device, **options)


def run_gdas(config: BPEConfig, seed: int = 0, device: torch.device | str | None = None, tau_max: float = 10.0,
             tau_min: float = 0.1, **options) -> DifferentiableResult:
    """GDAS on the NB201 supernet, tau annealed linearly from ``tau_max`` to ``tau_min`` over the epochs."""
    return search("gdas", config, seed, device, tau_max=tau_max, tau_min=tau_min, **options)


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
               "wall_s": r.wall_s, "search_cost_s": r.wall_s, "cells": 1, "distinct": 1, "failures": 0,
               "hardware": r.hardware, "arch_data": r.arch_data, "steps": r.steps}
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
