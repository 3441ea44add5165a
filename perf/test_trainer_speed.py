"""Training throughput (images per second) of the budgeted trainer against a plain PyTorch loop.

Ours: :func:`harness.bpe.trainer.train` (uint8 images preloaded on the device once; crop, flip,
cutout, resize and normalisation batched on the device; channels_last and AMP on CUDA; no
per-batch host copy). Baseline, measured in the same run: the loop the official DARTS/BPE code
is written as, a ``DataLoader`` over a ``Dataset`` that augments one image at a time in numpy
(pad, crop, flip, cutout, normalise), a per-batch resize and a per-batch copy to the device.
Both train the same NB201 network (same init) for one epoch of the same images under the same
BPE configuration; on the CPU AMP is off in both. Ours also measures the 200 validation images
inside its timing (the baseline does not).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.bpe import BPEConfig
from harness.bpe.trainer import load_train_data, train
from harness.data import stats_for
from harness.models.nb201 import NB201Network

from .conftest import record

CONFIG = BPEConfig.parse("e1-b128-lr0.05-l1-c8-i16-co8-f0.08-v200")  # 2,000 training images, cutout 8
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture(scope="module")
def data(bench_home):
    if not os.environ.get("HARNESS_DATA"):
        pytest.fail("HARNESS_DATA is not set: export HARNESS_DATA=../shared/data")
    return load_train_data("cifar10", CONFIG.fraction, CONFIG.valid_images, device=DEVICE)


def _model():
    torch.manual_seed(0)
    return NB201Network(ARCH, C=CONFIG.channels, N=CONFIG.layers, num_classes=10).to(DEVICE)


class _PerImage(torch.utils.data.Dataset):
    """One image at a time, augmented in numpy (as torchvision-style transforms do)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0):
        self.x, self.y = x, y
        self.rng = np.random.default_rng(seed)
        mean, std = stats_for("cifar10")
        self.mean, self.std = mean.numpy()[:, None, None], std.numpy()[:, None, None]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = self.x[i].astype(np.float32) / 255.0  # C x H x W
        img = np.pad(img, ((0, 0), (4, 4), (4, 4)))
        oy, ox = self.rng.integers(0, 9, size=2)
        img = img[:, oy:oy + 32, ox:ox + 32]
        if self.rng.random() < 0.5:
            img = img[:, :, ::-1]
        img = (img - self.mean) / self.std
        if CONFIG.cutout:
            cy, cx = self.rng.integers(0, 32, size=2)
            half = CONFIG.cutout // 2
            img = img.copy()
            img[:, max(0, cy - half):cy + half, max(0, cx - half):cx + half] = 0.0
        return torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)), int(self.y[i])


def plain_loop(data) -> int:
    model = _model()
    dataset = _PerImage(data.train_x.cpu().numpy(), data.train_y.cpu().numpy())
    loader = torch.utils.data.DataLoader(dataset, batch_size=CONFIG.batch_size, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=CONFIG.lr, momentum=CONFIG.momentum,
                          weight_decay=CONFIG.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=CONFIG.epochs * len(loader))
    images = 0
    model.train()
    for _ in range(CONFIG.epochs):
        for x, y in loader:
            x = F.interpolate(x, size=(CONFIG.image_size, CONFIG.image_size), mode="bilinear", align_corners=False)
            x, y = x.to(DEVICE), y.to(DEVICE)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            images += len(y)
            loss.item()  # the usual per-batch logging sync
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    return images


def ours(data) -> int:
    return train(_model(), data, CONFIG, seed=0).images


def test_plain_loop(benchmark, data):
    images = benchmark.pedantic(plain_loop, args=(data,), rounds=3, iterations=1, warmup_rounds=1)
    record("trainer_throughput", "baseline", benchmark,
           baseline_images_per_s=round(images / benchmark.stats.stats.median, 1))
    assert images == len(data.train_y)


def test_trainer(benchmark, data):
    images = benchmark.pedantic(ours, args=(data,), rounds=3, iterations=1, warmup_rounds=1)
    record("trainer_throughput", "ours", benchmark, images_per_s=round(images / benchmark.stats.stats.median, 1),
           device=str(DEVICE), config=CONFIG.label)
    assert images == len(data.train_y)
