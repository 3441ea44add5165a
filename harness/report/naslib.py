"""Per-cell rank agreement between our training-free scores and NASLib's precomputed ones.

Batches, seeds and initialisations differ between the two, so scores are not identical; a high
rank agreement says the two implement the same score, a low one is a bug to find (ours or
theirs). Each row also gives both sides' Spearman against the same ground truth on the same
cells, so a disagreement can be told apart from noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..benchmarks.nb201 import NB201
from ..metrics import rank_agreement
from .correlation import ground_truths
from .tables import write_table

TRUTH = "test@200"


def agreement_table(ours: pd.DataFrame, naslib: pd.DataFrame, bench: NB201, dataset: str,
                    n_boot: int = 1000, again: pd.DataFrame | None = None) -> pd.DataFrame:
    """``ours``: :func:`score_cells` rows (index, arch, estimator, score); ``naslib``: rows of
    :func:`load_naslib_scores` for ``dataset``. One row per estimator both sides have.

    ``again``: our scores of the same cells on another batch and initialisation; its Spearman
    with ``ours`` is the *noise floor* (``noise_spearman``): how far two runs of the same code
    agree, the most that agreement with another implementation (on other batches) can show."""
    truth_desc, truth = ground_truths(bench, dataset)[TRUTH]
    rows = []
    for label, mine in ours.groupby("estimator", sort=False):  # each variant (fisher, fisher:official) a row
        theirs = naslib[naslib.estimator == label.partition(":")[0]]
        if theirs.empty:
            continue
        both = mine.merge(theirs[["arch", "score", "seconds"]], on="arch", suffixes=("", "_naslib"))
        agree = rank_agreement(both.score.to_numpy(), both.score_naslib.to_numpy(), n_boot=n_boot)
        acc = truth[both["index"].to_numpy()]
        ours_truth = rank_agreement(both.score.to_numpy(), acc, n_boot=0)
        theirs_truth = rank_agreement(both.score_naslib.to_numpy(), acc, n_boot=0)
        ratio = both.score.abs().median() / both.score_naslib.abs().median()
        row = {"estimator": mine.estimator.iloc[0], "cells": len(both), "n": agree.n, "n_nan": agree.n_nan,
               "spearman_vs_naslib": agree.spearman, "lo": agree.spearman_ci[0], "hi": agree.spearman_ci[1]}
        if again is not None:
            twice = both.merge(again[again.estimator == mine.estimator.iloc[0]][["index", "score"]], on="index",
                               suffixes=("", "_again"))
            noise = rank_agreement(twice.score.to_numpy(), twice.score_again.to_numpy(), n_boot=n_boot)
            row.update({"noise_spearman": noise.spearman, "noise_lo": noise.spearman_ci[0],
                        "noise_hi": noise.spearman_ci[1], "noise_n": noise.n})
        rows.append({**row, "kendall_vs_naslib": agree.kendall,
                     f"ours_spearman_{TRUTH}": ours_truth.spearman, f"naslib_spearman_{TRUTH}": theirs_truth.spearman,
                     "median_abs_ratio": float(ratio) if np.isfinite(ratio) else float("nan"),
                     "ours_median_s": float(both.seconds.median()),
                     "naslib_median_s": float(both.seconds_naslib.median())})
    return pd.DataFrame(rows)


def write_agreement_report(ours: pd.DataFrame, naslib: pd.DataFrame, bench: NB201, dataset: str, out: Path,
                           context: str = "", n_boot: int = 1000, again: pd.DataFrame | None = None) -> pd.DataFrame:
    table = agreement_table(ours, naslib, bench, dataset, n_boot, again)
    noise = ("`noise_spearman`: Spearman between two of our runs on the same cells with another batch and "
             "initialisation (the noise floor: agreement with NASLib, whose batches differ too, cannot exceed it by "
             "more than its CI), over `noise_n` cells with both scores. " if again is not None else "")
    truth_desc = ground_truths(bench, dataset)[TRUTH][0]
    write_table(table, Path(out), "naslib_agreement", f"Per-cell rank agreement with NASLib's scores ({dataset})",
                context + f"\n\n`spearman_vs_naslib`: Spearman between our score and NASLib's for the same cell, "
                f"95 % bootstrap CI ({n_boot} resamples). {noise}`*_spearman_{TRUTH}`: each side against {truth_desc} "
                "on the same cells. `median_abs_ratio`: median |ours| / median |NASLib| (scale, not rank). "
                "NASLib's times were measured on their hardware.", digits=3)
    return table
