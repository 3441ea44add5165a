"""The budgeted trainer: train one network cheaply under a :class:`BPEConfig`, measure it on
held-out validation images, record its wall time and hardware.

Data (CIFAR-10's training set, real images) follows NB201's ``cifar10-valid`` protocol: the
network trains on the train half (a class-stratified ``fraction`` of it) and is measured on
the valid half (optionally a class-stratified subset of ``valid_images``). The test set is never
used: the official BPE code selected on the CIFAR-10 test set, which leaks the test set into
the estimate.

Speed: the uint8 images are put on the device once and shared by every network trained in the
process; augmentation (random crop with 4-pixel padding, flip, cutout), the resize to the BPE
image size and normalisation run batched on the device; on CUDA the model and batches are
channels_last, fp16 uses a gradient scaler, and nothing is copied to the host inside an epoch.
SGD with momentum and Nesterov off, cosine learning rate to zero over all steps, gradient
clipping at 5 (as the BPE code).
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import cifar10_valid_split, draw_device, load_images, random_crop_flip, stats_for
from ..data.images import cifar10_valid_protocol
from ..errors import HarnessError
from ..paths import portable_path
from .config import BPEConfig

log = logging.getLogger(__name__)


def hardware(device: torch.device) -> str:
    """``"cuda: NVIDIA H100 ..."`` or ``"cpu: <processor> (<threads> threads)"``."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"cpu: {name} ({torch.get_num_threads()} threads)"


@dataclass
class TrainData:
    """uint8 images (N x 3 x 32 x 32) and labels on the device: a train and a valid part."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    dataset: str
    num_classes: int
    note: str
    source: str = ""  # where the images came from (ImageSet.source)
    split: str = ""  # the train/valid halves (harness.data.images.cifar10_valid_protocol)

    @property
    def device(self) -> torch.device:
        return self.train_x.device


_DATA_CACHE: dict[tuple, TrainData] = {}


def _stratified(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A class-stratified, seeded subset with ``round(fraction * count)`` (>= 1) images per class."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        keep.append(rng.permutation(members)[:max(1, int(round(fraction * members.size)))])
    return np.sort(np.concatenate(keep))


def load_train_data(dataset: str = "cifar10", fraction: float = 1.0, valid_images: int | None = None,
                    device: torch.device | str = "cpu", seed: int = 0, source=None) -> TrainData:
    """Real training images split into train/valid (NB201's cifar10-valid halves), cached per process."""
    if dataset not in ("cifar10", "cifar10-valid"):
        raise HarnessError(f"the budgeted trainer has no protocol for {dataset!r} yet", "use --dataset cifar10")
    device = torch.device(device)
    key = (dataset, float(fraction), valid_images, str(device), seed, str(source))
    if key in _DATA_CACHE:
        return _DATA_CACHE[key]
    images = load_images("cifar10", "train", source)
    split = cifar10_valid_protocol()
    train_idx, valid_idx = cifar10_valid_split(images)
    train_idx = train_idx[_stratified(images.y[train_idx], fraction, seed)]
    if valid_images is not None:
        if not 1 <= valid_images <= len(valid_idx):
            raise HarnessError(f"valid_images={valid_images} is outside 1..{len(valid_idx)}", "ask for fewer")
        valid_idx = valid_idx[_stratified(images.y[valid_idx], valid_images / len(valid_idx), seed + 1)]

    def put(idx):
        x = torch.from_numpy(np.ascontiguousarray(images.x[idx])).permute(0, 3, 1, 2).contiguous()
        return x.to(device), torch.from_numpy(images.y[idx]).to(device)

    tx, ty = put(train_idx)
    vx, vy = put(valid_idx)
    # the halves are named only when they are NB201's file: the seeded fallback keeps the note (a
    # run-store key of DARTS cells) it always had, so no cell stored under it is trained again
    halves = " (NB201's cifar-split.txt halves)" if "cifar-split.txt" in split else ""
    # the source as HARNESS_DATA/...: the note keys the DARTS cells' run-store entries, the same on every machine
    note = (f"CIFAR-10 training set ({portable_path(images.source)}): {len(train_idx)} training images (fraction {fraction:g} of the "
            f"train half), {len(valid_idx)} validation images from the valid half{halves}; test set unused")
    data = TrainData(tx, ty, vx, vy, dataset, images.num_classes, note, str(images.source), split)
    _DATA_CACHE[key] = data
    return data


def _prepare(x: torch.Tensor, config: BPEConfig, mean: torch.Tensor, std: torch.Tensor, augment: bool,
             generator: torch.Generator | None, channels_last: bool) -> torch.Tensor:
    """uint8 batch -> augmented (crop 4 px + flip, cutout), resized, normalised float batch."""
    x = x.float().div_(255.0)
    if augment:
        x = random_crop_flip(x, 4, generator)
        if config.cutout > 0:
            x = cutout(x, config.cutout, generator)
    if x.shape[-1] != config.image_size:
        x = F.interpolate(x, size=(config.image_size, config.image_size), mode="bilinear", align_corners=False)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def cutout(x: torch.Tensor, length: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one ``length`` x ``length`` square per image at a uniform centre (clipped at the border)."""
    n, _, h, w = x.shape
    at = draw_device(generator, x.device)
    cy = torch.randint(0, h, (n,), generator=generator, device=at).to(x.device)
    cx = torch.randint(0, w, (n,), generator=generator, device=at).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= (cy[:, None] - length // 2)) & (ys < (cy[:, None] + (length + 1) // 2))
    in_x = (xs >= (cx[:, None] - length // 2)) & (xs < (cx[:, None] + (length + 1) // 2))
    mask = ~(in_y[:, :, None] & in_x[:, None, :])
    return x * mask[:, None, :, :]


@dataclass
class TrainResult:
    valid_acc: float  # % top-1 on the validation images after the last epoch
    valid_loss: float
    train_acc: float  # % top-1 on the (augmented) training batches of the last epoch
    train_loss: float
    epochs: int
    images: int  # training images seen
    seconds: float  # wall time of training and validation
    train_seconds: float
    images_per_s: float  # training throughput
    params: int
    device: str
    hardware: str
    config: str  # the BPE label
    data: str
    curve: list = field(default_factory=list)  # (epoch, train_loss, train_acc)


def _logits(out):
    return out[0] if isinstance(out, tuple) else out


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def evaluate(model: nn.Module, data: TrainData, config: BPEConfig, batch_size: int = 1000) -> tuple[float, float]:
    """(accuracy %, mean loss) on the validation images."""
    mean, std = (t.to(data.device)[None, :, None, None] for t in stats_for("cifar10"))
    channels_last = data.device.type == "cuda"
    model.eval()
    correct = torch.zeros((), device=data.device)
    loss = torch.zeros((), device=data.device, dtype=torch.float64)
    with torch.no_grad(), _autocast(data.device, config.precision):
        for start in range(0, len(data.valid_y), batch_size):
            x = _prepare(data.valid_x[start:start + batch_size], config, mean, std, False, None, channels_last)
            y = data.valid_y[start:start + batch_size]
            logits = _logits(model(x)).float()
            loss += F.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
    n = len(data.valid_y)
    return float(correct) / n * 100.0, float(loss) / n


def train(model: nn.Module, data: TrainData, config: BPEConfig, seed: int = 0, grad_clip: float = 5.0,
          aux_weight: float = 0.0, progress: bool = False) -> TrainResult:
    """Train ``model`` (already on ``data.device``) under ``config``; returns its validation accuracy.

    ``seed`` fixes the data order and augmentation (the model's init is the caller's). With
    ``aux_weight`` > 0 a model returning ``(logits, aux_logits)`` adds the auxiliary loss.
    """
    device = data.device
    start = time.perf_counter()
    channels_last = device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    gen = torch.Generator(device=device).manual_seed(seed)  # drawn where the data is (CPU: as before)
    mean, std = (t.to(device)[None, :, None, None] for t in stats_for("cifar10"))
    n = len(data.train_y)
    steps_per_epoch = max(1, math.ceil(n / config.batch_size))
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and config.precision == "fp16")
    curve = []
    train_loss = train_acc = math.nan
    images = 0
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=gen, device=gen.device).to(device)
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        correct = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            x = _prepare(data.train_x[idx], config, mean, std, True, gen, channels_last)
            y = data.train_y[idx]
            with _autocast(device, config.precision):
                out = model(x)
                logits = _logits(out)
                loss = F.cross_entropy(logits, y)
                if aux_weight > 0 and isinstance(out, tuple) and out[1] is not None:
                    loss = loss + aux_weight * F.cross_entropy(out[1], y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(opt)
            scaler.update()
            sched.step()
            loss_sum += loss.detach().double() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            images += len(y)
        train_loss, train_acc = float(loss_sum) / n, float(correct) / n * 100.0
        curve.append((epoch + 1, train_loss, train_acc))
        if progress:
            log.info("epoch %d/%d: train loss %.4f, acc %.2f %%", epoch + 1, config.epochs, train_loss, train_acc)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_seconds = time.perf_counter() - start
    valid_acc, valid_loss = evaluate(model, data, config)
    seconds = time.perf_counter() - start
    return TrainResult(valid_acc, valid_loss, train_acc, train_loss, config.epochs, images, seconds, train_seconds,
                       images / train_seconds if train_seconds > 0 else math.nan,
                       sum(p.numel() for p in model.parameters()), str(device), hardware(device), config.label,
                       data.note, curve)


def train_nb201(arch, config: BPEConfig, data: TrainData, seed: int = 0) -> TrainResult:
    """An NB201 cell's network with ``config.channels`` initial channels and ``config.layers``
    cells per stage, initialised with ``torch.manual_seed(seed)``, trained under ``config``."""
    from ..models.nb201 import NB201Network

    torch.manual_seed(seed)
    model = NB201Network(arch, C=config.channels, N=config.layers, num_classes=data.num_classes).to(data.device)
    return train(model, data, config, seed=seed)
