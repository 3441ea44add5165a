"""NASLib's precomputed training-free scores on NB201 (``zc_nasbench201.json``), as a reference.

The file maps ``dataset -> "(a, b, c, d, e, f)" -> {estimator: {score, time}, val_accuracy, ...}``.
Keys are op indices in NASLib's edge order over the ops
``[skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3]``; the tuple
``(a, b, c, d, e, f)`` is the NB201 cell ``|o[a]~0|+|o[b]~0|o[d]~1|+|o[c]~0|o[e]~1|o[f]~2|``
(NASLib orders edges (1,2), (1,3), (1,4), (2,3), (2,4), (3,4) of its nodes 1..4).

Checked on the file in ``HARNESS_DATA/nb201``: with this mapping NASLib's ``params`` equal
NB201's parameter count for 714 of 725 CIFAR-10 cells, and its ``val_accuracy`` has Spearman
0.99 with NB201's 200-epoch ``cifar10-valid`` validation accuracy.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd

from ..config import data_file
from ..errors import HarnessError

log = logging.getLogger(__name__)

NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
DEFAULT_FILE = "nb201/naslib_zc_nasbench201_725.json"
FAILED = -1e8  # NASLib's stand-in for a NaN or inf score

#: NASLib's estimator names -> ours (name[:variant])
ESTIMATOR_NAMES = {"nwot": "naswot", "jacov": "jacob_cov", "epe_nas": "epe_nas", "synflow": "synflow",
                   "snip": "snip", "grad_norm": "grad_norm", "grasp": "grasp", "fisher": "fisher",
                   "l2_norm": "l2_norm", "plain": "plain", "params": "params", "flops": "flops", "zen": "zen"}


def naslib_key_to_arch(key: str | tuple) -> str:
    """``"(a, b, c, d, e, f)"`` (NASLib op indices) -> NB201 arch string."""
    ops = tuple(int(v) for v in key.strip("()").split(",")) if isinstance(key, str) else tuple(key)
    if len(ops) != 6 or not all(0 <= o < len(NASLIB_OPS) for o in ops):
        raise HarnessError(f"NASLib key {key!r} is not six op indices in 0..4",
                           "pass NASLib's zc_nasbench201.json unchanged")
    a, b, c, d, e, f = (NASLIB_OPS[o] for o in ops)
    return f"|{a}~0|+|{b}~0|{d}~1|+|{c}~0|{e}~1|{f}~2|"


def load_naslib_scores(path: str | Path | None = None) -> pd.DataFrame:
    """Tidy table: dataset, arch, naslib_estimator, estimator, score, seconds, val_accuracy.

    ``path`` defaults to ``HARNESS_DATA/nb201/naslib_zc_nasbench201_725.json``. NASLib writes
    -1e8 for a score that came out NaN or inf (its ``zerocost.py``); such a score is read back as
    NaN, a failure, so that it is counted as one instead of ranked as a number.
    """
    path = Path(path) if path else data_file(DEFAULT_FILE, "NASLib's NB201 score file")
    if not path.is_file():
        raise HarnessError(f"NASLib score file {path} not found",
                           f"set HARNESS_DATA to a folder with {DEFAULT_FILE} or pass the file's path")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise HarnessError(f"{path} is not JSON ({err})", "pass NASLib's zc_nasbench201.json unchanged") from err
    rows = []
    for dataset, cells in raw.items():
        for key, entry in cells.items():
            arch = naslib_key_to_arch(key)
            for name, value in entry.items():
                if not isinstance(value, dict) or "score" not in value:
                    continue
                score = float(value["score"])
                rows.append({"dataset": dataset, "arch": arch, "naslib_estimator": name,
                             "estimator": ESTIMATOR_NAMES.get(name, name),
                             "score": math.nan if score == FAILED else score,
                             "seconds": float(value.get("time", float("nan"))),
                             "val_accuracy": float(entry.get("val_accuracy", float("nan")))})
    if not rows:
        raise HarnessError(f"{path} holds no scores", "pass NASLib's zc_nasbench201.json unchanged")
    log.info("read %d NASLib scores from %s", len(rows), path)
    return pd.DataFrame(rows)
