"""``nas-harness selftest``: the checks a GPU run needs, in one short call.

On a machine with CUDA it compares every estimator's score on the GPU with the CPU's (a few
cells, same initialisation, same batch), counts the waits for the GPU of the scorers that must
not wait per layer or class (``torch.cuda.set_sync_debug_mode`` and :class:`HostSyncCounter`),
times a short real training run and counts its synchronisations per step, runs one epoch of
DARTS and GDAS on a tiny supernet, measures EPE-NAS's and NASWOT's cells per second against the
CPU's in the same run, and provokes a real CUDA out-of-memory error to check that it is reported
and never cached. On a CPU-only
machine the same checks run on the CPU, the GPU ones are reported as ``untested`` (with the
reason), and nothing fails for want of a GPU.

Each check returns a :class:`Check`; :func:`run_selftest` returns them all; the CLI prints them
and writes ``selftest.json`` and ``selftest.md``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import torch

from .devices import HostSyncCounter

log = logging.getLogger(__name__)

#: the cell every check trains and times: every op type of NB201 except none
CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
#: the cells every estimator scores: CELL, one with dead edges (none), one of skips and pools only
CELLS = (CELL, "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
         "|skip_connect~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|")
#: how far a GPU score may be from the CPU's (float32 kernels sum in another order)
REL_TOL = 1e-3
#: scorers and the most waits for the device one score may take (batch of 64, 10 classes)
SYNC_BOUNDS = {"epe_nas": 3, "fisher": 2, "zen": 2}


@dataclass
class Check:
    """One check: ``status`` is ``pass``, ``fail`` or ``untested`` (with ``detail`` saying why)."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0
    values: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


def _timed(name: str, fn) -> Check:
    start = time.perf_counter()
    check = fn()
    check.name, check.seconds = name, time.perf_counter() - start
    return check


def _batch(device: torch.device, size: int = 64):
    from .estimators.run import make_batch

    return make_batch("cifar10", size, batch_seed=7, augment=False, device=device)[0]


def _score_on(name: str, variant: str, batch, device: torch.device, arch: str = CELL):
    from .estimators.run import EstimatorSpec, score_network

    return score_network(arch, "cifar10", EstimatorSpec(name, variant), batch, seed=11, device=device)


def check_environment(device: torch.device) -> Check:
    values = {"torch": torch.__version__, "device": str(device), "cuda_available": torch.cuda.is_available()}
    if device.type == "cuda":
        values |= {"gpu": torch.cuda.get_device_name(device), "cuda": torch.version.cuda,
                   "cudnn": torch.backends.cudnn.version(), "gpus": torch.cuda.device_count()}
    detail = f"torch {torch.__version__} on {values.get('gpu', device.type)}"
    return Check("environment", "pass", detail, values=values)


def agreement(label: str, rows: dict) -> list[str]:
    """One estimator's device scores against the CPU's (``rows``: cell -> score, cpu_score): the
    cells whose difference, over the largest finite CPU score on these cells, exceeds ``REL_TOL``
    (one side failed and the other not counts too). Sets each row's ``rel_diff``."""
    scale = max((abs(r["cpu_score"]) for r in rows.values() if math.isfinite(r["cpu_score"])), default=0.0) or 1.0
    bad = []
    for c, r in rows.items():
        both_failed = not math.isfinite(r["score"]) and not math.isfinite(r["cpu_score"])
        r["rel_diff"] = 0.0 if both_failed else abs(r["score"] - r["cpu_score"]) / scale
        if not r["rel_diff"] <= REL_TOL:  # NaN: one side failed
            bad.append(f"{label} on cell {c} (diff {r['rel_diff']:.2g} of its scale)")
    return bad


def check_estimators(device: torch.device) -> Check:
    """Every estimator (every variant) scores the cells on ``device``; on CUDA each score is
    compared with the CPU's of the same network and batch: their difference, relative to the
    largest CPU score of that estimator on these cells (a score near 0 has no relative error of
    its own), must be at most ``REL_TOL``."""
    from .estimators import ESTIMATORS

    cpu = torch.device("cpu")
    cpu_batch = _batch(cpu)
    dev_batch = _batch(device) if device.type != "cpu" else cpu_batch
    rows, bad = {}, []
    for name in ESTIMATORS.list():
        if name == "bpe":  # trains: the training check covers it
            continue
        for variant in ESTIMATORS.get(name).meta.get("variants") or ("",):
            label = f"{name}:{variant}" if variant else name
            mine = {}
            for c, arch in enumerate(CELLS):
                ours = _score_on(name, variant, dev_batch, device, arch)
                mine[c] = {"estimator": label, "cell": c, "score": ours.score, "seconds": ours.seconds,
                           "error": ours.error}
                if device.type != "cpu":
                    ref = _score_on(name, variant, cpu_batch, cpu, arch)
                    mine[c] |= {"cpu_score": ref.score, "cpu_seconds": ref.seconds}
                elif not ours.ok and c == 0:  # CELL has a score for every estimator
                    bad.append(f"{label} ({ours.error})")
            if device.type != "cpu":
                bad += agreement(label, mine)
            rows |= {f"{label}@{c}": r for c, r in mine.items()}
    if bad:
        return Check("estimators", "fail", "off: " + ", ".join(bad), values=rows)
    if device.type == "cpu":
        return Check("estimators", "pass", f"{len(rows)} scores ({len(CELLS)} cells) on the CPU (GPU agreement "
                     "untested: no GPU)", values=rows)
    worst = max(r["rel_diff"] for r in rows.values())
    return Check("estimators", "pass", f"{len(rows)} scores within {REL_TOL:g} of the CPU's (worst {worst:.2g})",
                 values=rows)


def _cuda_syncs(fn) -> int:
    """The synchronisations CUDA itself reports while ``fn`` runs (set_sync_debug_mode warnings)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def check_host_syncs(device: torch.device) -> Check:
    """The scorers that once waited per class or per layer wait at most ``SYNC_BOUNDS`` times."""
    from .estimators import score
    from .models.nb201 import build_network

    batch = _batch(device)
    values, bad = {}, []
    for name, bound in SYNC_BOUNDS.items():
        torch.manual_seed(0)
        net = build_network(CELL, "cifar10").to(device)
        with HostSyncCounter() as syncs:
            score(name, net, batch)
        values[name] = {"host_reads": syncs.count, "bound": bound, "names": syncs.names}
        if device.type == "cuda":
            torch.manual_seed(0)
            net = build_network(CELL, "cifar10").to(device)
            values[name]["cuda_syncs"] = _cuda_syncs(lambda: score(name, net, batch))  # noqa: B023
        if syncs.count > bound:
            bad.append(f"{name}: {syncs.count} > {bound}")
    if bad:
        return Check("host syncs", "fail", "; ".join(bad), values=values)
    cuda = ("; CUDA reports " + ", ".join(f"{k} {v['cuda_syncs']}" for k, v in values.items())
            if device.type == "cuda" else " (CUDA's own count untested: no GPU)")
    return Check("host syncs", "pass", ", ".join(f"{k} {v['host_reads']}" for k, v in values.items()) + cuda,
                 values=values)


def check_training(device: torch.device, images: int = 1024) -> Check:
    """One epoch of real training of the cell (C8, N1, ``images`` CIFAR-10 images) on ``device``.
    On CUDA, the synchronisations per step are counted (the augmentation and the data order are
    drawn on the device, so no step should copy from the host)."""
    from .bpe.config import BPEConfig
    from .bpe.trainer import load_train_data, train_nb201

    config = BPEConfig.parse(f"e1-b128-lr0.05-l1-c8-i32-f{images / 25000:g}-v500")
    data = load_train_data("cifar10", config.fraction, config.valid_images, device=device)
    result = train_nb201(CELL, config, data, seed=0)
    values = {"images_per_second": result.images_per_s, "valid_acc": result.valid_acc,
              "train_seconds": result.train_seconds}
    if device.type == "cuda":
        steps = math.ceil(len(data.train_y) / config.batch_size)
        values["cuda_syncs_per_step"] = _cuda_syncs(lambda: train_nb201(CELL, config, data, seed=0)) / steps
    if not math.isfinite(result.valid_acc):
        return Check("training", "fail", f"validation accuracy {result.valid_acc}", values=values)
    extra = (f", {values['cuda_syncs_per_step']:.1f} CUDA syncs per step" if "cuda_syncs_per_step" in values
             else " (CUDA untested: no GPU)")
    return Check("training", "pass", f"{result.images_per_s:.0f} images/s{extra}",
                 values=values)


def check_supernet(device: torch.device) -> Check:
    """One epoch of DARTS (first order) and of GDAS on a tiny supernet (C4, N1, 250 images) on ``device``."""
    from .bpe.config import BPEConfig
    from .search.differentiable import search

    config = BPEConfig.parse("e1-b64-lr0.05-l1-c4-i16-f0.01-v200")
    values = {}
    for method in ("darts-v1", "gdas"):
        result = search(method, config, seed=0, device=device)
        values[method] = {"arch": result.arch, "steps": result.steps, "wall_s": result.wall_s,
                          "device": result.device}
        if result.steps < 1 or not result.arch:
            return Check("supernet", "fail", f"{method} took no step", values=values)
    return Check("supernet", "pass", ", ".join(f"{m}: {v['steps']} steps in {v['wall_s']:.1f} s"
                                                for m, v in values.items()), values=values)


def check_speed(device: torch.device, cells: int = 4, batch_size: int = 256) -> Check:
    """Cells per second of EPE-NAS and NASWOT (batch 256, the paper's) on ``device``; on CUDA the
    same cells on the CPU too, so the ratio is measured in this run."""
    from .benchmarks import NB201
    from .estimators.run import sample_indices

    bench = NB201.open()
    archs = [bench.arch(int(i)) for i in sample_indices(cells, seed=0, total=len(bench))]
    sides = [device] + ([torch.device("cpu")] if device.type != "cpu" else [])
    values = {}
    for name in ("epe_nas", "naswot"):
        for side in sides:
            batch = _batch(side, batch_size)
            _score_on(name, "", batch, side, archs[0])  # warm-up
            if side.type == "cuda":
                torch.cuda.synchronize(side)
            start = time.perf_counter()
            for arch in archs:
                _score_on(name, "", batch, side, arch)
            if side.type == "cuda":
                torch.cuda.synchronize(side)
            values.setdefault(name, {})[f"{side.type}_cells_per_s"] = cells / (time.perf_counter() - start)
        if device.type != "cpu":
            values[name]["ratio"] = values[name][f"{device.type}_cells_per_s"] / values[name]["cpu_cells_per_s"]
    detail = ", ".join(f"{n} {v[f'{device.type}_cells_per_s']:.1f} cells/s"
                       + (f" ({v['ratio']:.1f}x the CPU)" if "ratio" in v else "") for n, v in values.items())
    return Check("speed", "pass", detail + ("" if device.type != "cpu" else " (GPU untested: no GPU)"), values=values)


def check_out_of_memory(device: torch.device) -> Check:
    """A real CUDA out-of-memory error (the allocator capped to a sliver of the GPU) is reported as
    a transient failure: raised, never a cached number."""
    if device.type != "cuda":
        return Check("out of memory", "untested", "needs a CUDA device")
    import tempfile
    from pathlib import Path

    from .estimators.base import TransientScoreError
    from .estimators.run import CellScorer, EstimatorSpec
    from .runstore import RunStore

    batch = _batch(device, 256)  # before the cap
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "runs.sqlite")
        scorer = CellScorer(lambda index: CELL, "cifar10", EstimatorSpec("epe_nas", "paper"), batch=batch,
                            images="selftest", batch_size=256, batch_seed=7, device=device, store=store)
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(1e-4, device)
        try:
            scorer.score(0)
            outcome = Check("out of memory", "fail", "no out-of-memory error under a 0.01 % memory cap")
        except TransientScoreError as err:
            stored = store.get(scorer.key(0))
            outcome = (Check("out of memory", "pass", f"reported, not cached: {err.problem}") if stored is None
                       else Check("out of memory", "fail", f"the failure was cached: {stored}"))
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)
            torch.cuda.empty_cache()
        store.close()
    return outcome


#: the NB101 Inception-like cell of the benchmark's README (2,694,282 parameters), as JSON
NB101_CELL = ('{"matrix": [[0,1,1,1,0,1,0],[0,0,0,0,0,0,1],[0,0,0,0,0,0,1],[0,0,0,0,1,0,0],[0,0,0,0,0,0,1],'
              '[0,0,0,0,0,0,1],[0,0,0,0,0,0,0]], "ops": ["input","conv1x1-bn-relu","conv3x3-bn-relu",'
              '"conv3x3-bn-relu","conv3x3-bn-relu","maxpool3x3","output"]}')
NB101_ESTIMATORS = ("synflow", "grad_norm", "naswot", "jacob_cov", "snip")


def check_nb101(device: torch.device, batch_size: int = 16) -> Check:
    """The NB101 network (the full-size Inception-like cell, 128-512 channels) scored by five
    estimators on ``device``, and on CUDA against the CPU as :func:`check_estimators` does."""
    from .estimators.run import EstimatorSpec, score_network

    cpu = torch.device("cpu")
    cpu_batch = _batch(cpu, batch_size)
    dev_batch = _batch(device, batch_size) if device.type != "cpu" else cpu_batch
    rows, bad = {}, []
    for name in NB101_ESTIMATORS:
        ours = score_network(NB101_CELL, "cifar10", EstimatorSpec(name, ""), dev_batch, 11, device, space="nb101")
        row = {"estimator": name, "score": ours.score, "seconds": ours.seconds, "error": ours.error}
        if not ours.ok:
            bad.append(f"{name} ({ours.error})")
        if device.type != "cpu":
            ref = score_network(NB101_CELL, "cifar10", EstimatorSpec(name, ""), cpu_batch, 11, cpu, space="nb101")
            row |= {"cpu_score": ref.score, "cpu_seconds": ref.seconds}
            bad += agreement(name, {0: row})
        rows[name] = row
    if bad:
        return Check("nb101", "fail", "off: " + ", ".join(bad), values=rows)
    where = "on the CPU (GPU agreement untested: no GPU)" if device.type == "cpu" else \
        f"within {REL_TOL:g} of the CPU's"
    return Check("nb101", "pass", f"{len(rows)} estimators on the NB101 Inception-like cell, batch {batch_size}, "
                 + where, values=rows)


CHECKS = (("environment", check_environment), ("estimators", check_estimators), ("nb101", check_nb101),
          ("host syncs", check_host_syncs),
          ("training", check_training), ("supernet", check_supernet), ("speed", check_speed),
          ("out of memory", check_out_of_memory))


def run_selftest(device: torch.device, only: tuple[str, ...] = ()) -> list[Check]:
    """Every check (or those named in ``only``) on ``device``, in order."""
    checks = []
    for name, fn in CHECKS:
        if only and name not in only:
            continue
        log.info("selftest: %s", name)
        checks.append(_timed(name, lambda fn=fn: fn(device)))
    return checks


def as_records(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
