"""The README's generated blocks: tables copied from ``results/`` between markers.

A block is ``<!-- NAME_START -->`` ... ``<!-- NAME_END -->``; :func:`render` computes each
block's text from the files under ``results/``, :func:`update` writes them into the README, and
:func:`stale` lists the blocks whose text differs from what ``results/`` gives (a test fails on
any). Nothing in a block is typed by hand.

A generator raises :class:`ResultsMissing` (a :class:`HarnessError` naming the file and the command
that writes it) when a file it reads is not there. :func:`update` then leaves that block as it is
and logs one line, so ``nas-harness report readme`` also runs where only part of ``results/`` was
computed (``./reproduce.sh`` offline writes only ``results/embedded/``); :func:`stale` counts such a
block as stale unless ``missing_ok``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import pandas as pd

from ..errors import HarnessError
from .tables import to_markdown

log = logging.getLogger(__name__)


class ResultsMissing(HarnessError):
    """A file a README block is computed from is not under ``results/``."""


def _require(path: Path, fix: str) -> Path:
    if not path.is_file():
        raise ResultsMissing(f"{path} not found", fix)
    return path

# The search headline: CIFAR-10 and the test columns of the other datasets; REINFORCE at its
# script's default and at the best of NB201's rates (all six are in results/search).
_SEARCH_COLUMNS = ["strategy", "options", "estimator", "budget", "runs", "wall_s", "C10 val", "C10 val published (Δ)",
                   "C10 test", "C10 test published (Δ)", "C100 test", "C100 test published (Δ)", "IN16 test",
                   "IN16 test published (Δ)"]
_SEARCH_OPTIONS = ("", "learning_rate=0.001", "learning_rate=0.02")


def _search(results: Path) -> str:
    path = _require(results / "search" / "search_table.csv",
                    "run ./reproduce.sh (and ./reproduce.sh long for the N-sample rows)")
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    table = table[table.options.fillna("").isin(_SEARCH_OPTIONS)]
    return to_markdown(table[[c for c in _SEARCH_COLUMNS if c in table.columns]], 1)


_LABELS = {"cifar10": ("C10", "CIFAR-10"), "cifar100": ("C100", "CIFAR-100"), "ImageNet16-120": ("IN16", "ImageNet16-120")}


def _read(results: Path, relative: str) -> pd.DataFrame:
    return pd.read_csv(_require(results / relative, "run ./reproduce.sh with the data (nas-harness data check)"))


def _optimum(results: Path) -> str:
    table = _read(results, "nb201/nb201_optimum.csv")
    ours, published = {"": "ours (best index)"}, {"": "published (Dong & Yang 2020)"}
    for row in table.itertuples():
        column = f"{_LABELS[row.dataset][0]} {'val' if row.selected_by == 'valid' else 'test'}"
        value = row.valid_acc if row.selected_by == "valid" else row.test_acc
        ours[column] = f"{value:.4f} ({row.index})"
        published[column] = f"{row.published:.2f}"
    return to_markdown(pd.DataFrame([ours, published]))


def _fidelity(results: Path) -> str:
    table = _read(results, "nb201/nb201_fidelity.csv")
    rows = []
    for row in table.itertuples():
        split = f"{row.role} ({row.benchmark_dataset} {row.split})" if row.dataset == "cifar10" else row.split
        rows.append({"dataset": _LABELS[row.dataset][1], "split": split, "cells": row.n,
                     "Kendall tau-b": f"{row.kendall:.3f} [{row.kendall_lo:.3f}, {row.kendall_hi:.3f}]",
                     "Spearman": f"{row.spearman:.3f} [{row.spearman_lo:.3f}, {row.spearman_hi:.3f}]"})
    return to_markdown(pd.DataFrame(rows))


# --- formatting -------------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _f(value, digits: int = 3, sign: bool = False) -> str | None:
    """``value`` with ``digits`` decimals (``+`` before positives when ``sign``); None (an en dash) when missing."""
    if _missing(value):
        return None
    return f"{float(value):{'+' if sign else ''}.{digits}f}"


def _ci(value, lo, hi, digits: int = 3, sign: bool = False) -> str | None:
    if _missing(value):
        return None
    if _missing(lo) or _missing(hi):
        return _f(value, digits, sign)
    return f"{_f(value, digits, sign)} [{_f(lo, digits)}, {_f(hi, digits)}]"


def _estimator_label(name: str) -> str:
    """``epe_nas:paper`` -> ``epe_nas (paper)``."""
    base, _, variant = str(name).partition(":")
    return f"{base} ({variant})" if variant else base


def _short_bpe(label: str) -> str:
    """A BPE label without the fields left at their defaults that the README never writes
    (precision fp32, cutout 0, momentum 0.9, weight decay 0.0003)."""
    return "-".join(t for t in str(label).split("-") if t not in ("fp32", "co0", "m0.9", "wd0.0003"))


# --- training-free estimators, 1,000 cells -----------------------------------------------------------

# the order of the table as first written (Abdelfattah et al.'s six first); unknown estimators after
_TF_ORDER = ["grad_norm", "snip", "grasp", "fisher", "synflow", "jacob_cov", "epe_nas", "naswot", "zen", "l2_norm",
             "plain", "params", "flops"]
_CORRELATE_FIX = ("run ./reproduce.sh long (nas-harness correlate --dataset cifar10 --archs 1000 --seed 0 "
                  "--batch-size 64 --batch-seed 42 --out results/correlate-cifar10)")


def _seconds(value) -> str | None:
    if _missing(value):
        return None
    return "<0.01" if value < 0.005 else f"{value:.2f}"


def _training_free(results: Path, folder: str = "correlate-cifar10") -> str:
    """The 1,000-cell correlation table: one row per estimator, from ``correlation.csv`` (one row per
    estimator x truth) and ``published.csv``; the ranked-last columns are en dashes in files that
    predate them."""
    corr = pd.read_csv(_require(results / folder / "correlation.csv", _CORRELATE_FIX), keep_default_na=False,
                       na_values=[""])
    published = pd.read_csv(_require(results / folder / "published.csv", _CORRELATE_FIX))
    published = published[published.truth == "valid@200"].set_index("estimator")
    names = list(dict.fromkeys(corr.estimator))
    known = {name: i for i, name in enumerate(_TF_ORDER)}
    first_seen = {n: i for i, n in enumerate(names)}
    names.sort(key=lambda n: (known.get(str(n).partition(":")[0], len(known)), first_seen[n]))
    by = corr.set_index(["estimator", "truth"])

    def cell(name, truth, column):
        if (name, truth) not in by.index or column not in by.columns:
            return None
        return by.loc[(name, truth), column]

    rows = []
    for name in names:
        first = corr[corr.estimator == name].iloc[0]
        failed = first.get("failed", first.get("n_nan"))
        failed = 0 if _missing(failed) else int(failed)
        reason = first.failure_example if "failure_example" in corr.columns else None
        pub = published.loc[name] if name in published.index else None
        rows.append({
            "estimator": _estimator_label(name),
            "Spearman valid@200 [95 % CI]": _ci(*(cell(name, "valid@200", c)
                                                  for c in ("spearman", "spearman_lo", "spearman_hi"))),
            "published abs. Spearman": None if pub is None else _f(pub.published_abs_spearman),
            "delta": None if pub is None else _f(pub.delta, sign=True),
            "Spearman test@200": _f(cell(name, "test@200", "spearman")),
            "Spearman test@200, failed ranked last": _f(cell(name, "test@200", "spearman_ranked_last")),
            "Kendall test@200": _f(cell(name, "test@200", "kendall")),
            "Spearman vs params": _f(cell(name, "params", "spearman")),
            "failed cells (first reason)": str(failed) if not failed or _missing(reason) else f"{failed} ({reason})",
            "median s/cell": _seconds(first.median_seconds),
        })
    return to_markdown(pd.DataFrame(rows))


# --- NAS-Bench-101 ------------------------------------------------------------------------------------

_NB101_FIX = ("run ./reproduce.sh long (the NB101 correlation; hours on 2 CPU cores), or nas-harness correlate "
              "--space nb101 --source vis --archs N ... --out results/correlate-nb101-N")


def _nb101_folders(results: Path) -> list[Path]:
    """The NB101 correlation folders, the one with the most cells first."""
    from .verdicts import _options

    found = [f for f in results.glob("correlate-*") if (f / "correlation.csv").is_file()
             and _options(f).get("space") == "nb101"]
    if not found:
        raise ResultsMissing(f"no NB101 correlation in {results}", _NB101_FIX)
    return sorted(found, key=lambda f: (-int(pd.read_csv(f / "correlation.csv").cells.max()), f.name))


def _nb101_correlation(results: Path) -> str:
    """Every estimator on the largest NB101 sample at hand, beside Abdelfattah et al.'s NB101 row."""
    rows = []
    for folder in _nb101_folders(results):
        corr = pd.read_csv(folder / "correlation.csv", keep_default_na=False, na_values=[""])
        published_path = folder / "published.csv"
        published = pd.read_csv(published_path).set_index("estimator") if published_path.is_file() else None
        by = corr.set_index(["estimator", "truth"])
        for name in dict.fromkeys(corr.estimator):
            if any(r["estimator"] == _estimator_label(name) for r in rows):
                continue  # the larger sample's row is shown
            first = corr[corr.estimator == name].iloc[0]
            pub = published.loc[name] if published is not None and name in published.index else None
            truth = "valid@108:max"
            rows.append({
                "estimator": _estimator_label(name), "cells": int(by.loc[(name, truth), "n"])
                if (name, truth) in by.index else None,
                "Spearman valid@108:max [95 % CI]": _ci(*(by.loc[(name, truth), c] if (name, truth) in by.index
                                                          else None for c in ("spearman", "spearman_lo", "spearman_hi"))),
                "published abs. Spearman (all 423,624, test@108)": None if pub is None else _f(pub.published_abs_spearman),
                "Kendall": _f(by.loc[(name, truth), "kendall"]) if (name, truth) in by.index else None,
                "Spearman vs params": _f(by.loc[(name, "params"), "spearman"]) if (name, "params") in by.index else None,
                "failed": int(first.failed) if "failed" in first else 0,
                "median s/cell": _seconds(first.median_seconds),
                "folder": f"`results/{folder.name}`",
            })
    return to_markdown(pd.DataFrame(rows))


def _nb101_search(results: Path) -> str:
    rows = []
    for path in sorted((results / "search-nb101").glob("*/summary.csv")):
        table = pd.read_csv(path)
        row = table[table.metric == "C10 val@108:max"]
        if row.empty:
            continue
        r = row.iloc[0]
        rows.append({"strategy": r.strategy, "options": r.options if isinstance(r.options, str) else "–",
                     "estimator": r.estimator, "budget": r.budget, "runs": int(r.runs),
                     "C10 val@108 (best repeat) of the choice": f"{r['mean']:.2f}±{r['std']:.2f}",
                     "cells queried per run": f"{r.cells:.0f}"})
    if not rows:
        raise ResultsMissing(f"no {results / 'search-nb101'}/*/summary.csv", "run ./reproduce.sh with the NB101 data")
    return to_markdown(pd.DataFrame(rows))


# --- agreement with NASLib ---------------------------------------------------------------------------

def _naslib(results: Path) -> str:
    return _agreement(_require(results / "naslib" / "naslib_agreement.csv",
                               "run nas-harness agree naslib --dataset cifar10 --batch-size 64 --batch-seed 42 "
                               "--out results/naslib"), "another batch and init")


def _naslib_protocol(results: Path) -> str:
    return _agreement(_require(results / "naslib-protocol" / "naslib_agreement.csv",
                               "run nas-harness agree naslib --dataset cifar10 --estimators epe_nas,fisher,"
                               "fisher:official,jacob_cov,naswot --batch-protocol per-cell --augment --batch-size 32 "
                               "--batch-seed 42 --out results/naslib-protocol"), "other batches per cell and init")


def _agreement(path: Path, floor: str) -> str:
    table = pd.read_csv(path).sort_values("spearman_vs_naslib", ascending=False, kind="stable")
    rows = []
    for row in table.to_dict("records"):
        ratio = row.get("median_abs_ratio")
        rows.append({
            "estimator": _estimator_label(row["estimator"]),
            "cells": row["cells"],
            "Spearman, ours vs NASLib [95 % CI]": _ci(row["spearman_vs_naslib"], row.get("lo"), row.get("hi")),
            f"noise floor: ours vs ours, {floor} [95 % CI]":
                _ci(row.get("noise_spearman"), row.get("noise_lo"), row.get("noise_hi")),
            "Spearman test@200, ours": _f(row.get("ours_spearman_test@200")),
            "Spearman test@200, NASLib": _f(row.get("naslib_spearman_test@200")),
            "median \\|ours\\| / median \\|NASLib\\|": None if _missing(ratio) else f"{ratio:#.3g}",
        })
    return to_markdown(pd.DataFrame(rows))


# --- BPE with real training on NB201, this CPU -------------------------------------------------------

_NB201_TRAIN_HALF = 25_000  # images in the train half of cifar10-valid (the BPE trainer's training split)


def _bpe_steps(config) -> tuple[int, int]:
    """(training images, SGD steps) of a BPE configuration on NB201's train half, as the trainer
    counts them: ``epochs * ceil(images / batch)``."""
    images = round(config.fraction * _NB201_TRAIN_HALF)
    return images, config.epochs * math.ceil(images / config.batch_size)


def _wall(value) -> str | None:
    if _missing(value):
        return None
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _bpe_nb201(results: Path) -> str:
    from ..bpe.config import BPEConfig

    fix = "run ./reproduce.sh long (the BPE runs of nas-harness correlate --estimators bpe:... --archs 20)"
    folders = sorted(p for p in (results / "bpe-nb201-cpu").glob("*/") if p.is_dir())
    if not folders:
        raise ResultsMissing(f"{results / 'bpe-nb201-cpu'} holds no BPE run", fix)
    rows = []
    for folder in folders:
        config = BPEConfig.parse(folder.name)
        corr = pd.read_csv(_require(folder / "correlation.csv", fix)).set_index("truth")
        scores = pd.read_csv(_require(folder / "scores.csv", fix))
        images, steps = _bpe_steps(config)
        acc = scores.score.dropna()
        rows.append((config.epochs, folder.name, {
            "BPE": f"`{folder.name}`", "train images": f"{images:,}", "SGD steps": f"{steps:,}",
            "Spearman vs valid@200 [95 % CI]": _ci(*(corr[c].get("valid@200")
                                                     for c in ("spearman", "spearman_lo", "spearman_hi")), sign=True),
            "Kendall": _f(corr.kendall.get("valid@200"), sign=True),
            "Spearman vs test@200": _f(corr.spearman.get("test@200"), sign=True),
            "vs params": _f(corr.spearman.get("params"), sign=True),
            "wall s per cell": _wall(corr.median_seconds.iloc[0]),
            "accuracy range": f"{acc.min():.1f}-{acc.max():.1f} %" if len(acc) else None,
        }))
    rows.sort(key=lambda r: (r[0], r[1]))
    return to_markdown(pd.DataFrame([r[2] for r in rows]))


# --- differentiable search on NB201 ------------------------------------------------------------------

_SUPERNET_FOLDERS = ("supernet-nb201-cpu", "supernet-nb201-cpu-e20", "supernet-nb201-cpu-e50")
_METHODS = {"darts-v1": "DARTS-V1", "darts-v2": "DARTS-V2", "gdas": "GDAS"}


def _mean_std(text, runs: int) -> str | None:
    """``92.54±1.27`` as ``92.54 ± 1.27``; one run: the mean alone."""
    if _missing(text):
        return None
    mean, _, std = str(text).partition("±")
    return mean if runs == 1 or not std else f"{mean} ± {std}"


def _supernet(results: Path) -> str:
    from ..bpe.config import BPEConfig

    fix = "run ./reproduce.sh long (nas-harness supernet ... --out results/supernet-nb201-cpu{,-e20,-e50})"
    blocks = []
    for name in _SUPERNET_FOLDERS:
        folder = results / name
        combined = pd.read_csv(_require(folder / "combined.csv", fix), keep_default_na=False, na_values=[""])
        config = BPEConfig.parse(combined.budget.iloc[0])
        blocks.append((config.epochs, name, folder, combined, config))
    rows = []
    for _, _, folder, combined, config in sorted(blocks, key=lambda b: (b[0], b[1])):
        order = {m: i for i, m in enumerate(_METHODS)}
        records = sorted(combined.to_dict("records"),
                         key=lambda r: (order.get(r["strategy"], len(order)), r["strategy"]))
        for i, row in enumerate(records):
            runs = pd.read_csv(_require(folder / row["strategy"] / "runs.csv", fix))
            alpha = pd.read_csv(_require(folder / row["strategy"] / "alpha.csv", fix))
            if "steps" in runs.columns and runs.steps.notna().all():
                low, high = int(runs.steps.min()), int(runs.steps.max())
                steps = f"{low:,}" if low == high else f"{low:,}-{high:,}"
            else:  # older runs did not record their steps: the trainer's count, approximately
                steps = f"~{_bpe_steps(config)[1]:,}"
            last = alpha[alpha.epoch == alpha.groupby("seed").epoch.transform("max")]
            n = int(row["runs"])
            rows.append({
                "budget (BPE)": f"`{_short_bpe(row['budget'])}`" if i == 0 else "",
                "SGD steps": steps if i == 0 else "",
                "method": _METHODS.get(row["strategy"], row["strategy"]), "runs": n,
                "C10 test": _mean_std(row["C10 test"], n), "C10 val": _mean_std(row["C10 val"], n),
                "wall s per run": f"{runs.wall_s.mean():,.0f}",
                "alpha: mean max weight (uniform 0.200)": _f(last.groupby(["seed", "edge"]).weight.max().mean()),
            })
    return to_markdown(pd.DataFrame(rows))


# --- search with a BPE reward ------------------------------------------------------------------------

_STRATEGIES = {"random": "random", "rea": "REA", "reinforce": "REINFORCE"}


def _search_bpe(results: Path) -> str:
    fix = "run ./reproduce.sh long (nas-harness search --estimator bpe:... --out results/search-bpe-cpu/STRATEGY)"
    rows = []
    for strategy, label in _STRATEGIES.items():
        runs = pd.read_csv(_require(results / "search-bpe-cpu" / strategy / "runs.csv", fix))
        for row in runs.to_dict("records"):
            rows.append({
                "strategy": label if len(runs) == 1 else f"{label} (run {row['run']})",
                "cells queried (distinct)": f"{row['cells']} ({row['distinct']})", "chosen index": row["index"],
                **{c: _f(row[c], 2) for c in ("C10 val", "C10 test", "C100 test", "IN16 test")}})
    return to_markdown(pd.DataFrame(rows))


# --- the BPE paper's table replayed ------------------------------------------------------------------

_DATASETS = {"cifar10-valid": "CIFAR-10 (valid)", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}


def _darts_config(row) -> str:
    return (f"e{row['epochs']} b{row['batch_size']} lr{row['lr']:g} {row['layers']} cells c{row['channels']} "
            f"{row['image_size']} px {row['precision']}" + (f" cutout {row['cutout']}" if row["cutout"] else ""))


def _bpe_replay(results: Path) -> str:
    fix = ("run ./reproduce.sh with the BPE sheet (nas-harness data fetch bpe; "
           "nas-harness bpe replay --out results/bpe-replay)")
    configs = pd.read_csv(_require(results / "bpe-replay" / "configs.csv", fix), keep_default_na=False,
                          na_values=[""])
    nb201 = pd.read_csv(_require(results / "bpe-replay" / "nb201_tabular_bpe.csv", fix))
    picks = []
    for paper in ("BPE1", "BPE2"):
        picks += [(paper, r) for r in configs[configs.paper_name == paper].to_dict("records")]
    order = configs.sort_values("spearman", kind="stable")
    picks += [(f"best of {len(configs)}", order.iloc[-1].to_dict()),
              (f"worst of {len(configs)}", order.iloc[0].to_dict())]
    rows = [{"BPE": f"{role}: {r['name']}", "space, cells": f"DARTS, {r['cells']}", "configuration": _darts_config(r),
             "sheet Spearman": _f(r["sheet_spearman"], 4),
             "Spearman, recomputed [95 % CI]": _ci(r["spearman"], r["spearman_lo"], r["spearman_hi"], 4),
             "Kendall tau-b": _f(r["kendall"], 4), "GPU-hours per cell": _f(r["gpu_hours"], 4),
             "cost / 200-epoch cost": None} for role, r in picks]
    full = nb201[nb201.epochs == nb201.epochs.max()].set_index("dataset").gpu_hours
    for r in nb201[nb201.epochs < nb201.epochs.max()].to_dict("records"):
        share = r["gpu_hours"] / full[r["dataset"]] if r["dataset"] in full.index else float("nan")
        rows.append({"BPE": f"{r['name']}, {_DATASETS.get(r['dataset'], r['dataset'])}",
                     "space, cells": f"NB201, {r['cells']:,}",
                     "configuration": f"NB201's own run, {r['epochs']} epochs",
                     "sheet Spearman": None, "Spearman, recomputed [95 % CI]":
                         _ci(r["spearman"], r["spearman_lo"], r["spearman_hi"], 4),
                     "Kendall tau-b": _f(r["kendall"], 4), "GPU-hours per cell": _f(r["gpu_hours"], 4),
                     "cost / 200-epoch cost": None if math.isnan(share) else f"{share:.1%}".replace("%", " %")})
    return to_markdown(pd.DataFrame(rows))


# --- MIP ---------------------------------------------------------------------------------------------

def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _mip(results: Path) -> str:
    fix = "run ./reproduce.sh with the BPE sheet (nas-harness mip --evaluator ... --out results/mip/NAME)"
    folders = sorted(p for p in (results / "mip").glob("*/") if p.is_dir())
    if not folders:
        raise ResultsMissing(f"{results / 'mip'} holds no MIP run", fix)
    sheet = results / "bpe-replay" / "configs.csv"
    sheet = pd.read_csv(sheet) if sheet.is_file() else None
    rows = []
    for folder in folders:
        chosen = json.loads(_require(folder / "chosen.json", fix).read_text())
        importances = pd.read_csv(_require(folder / "importances.csv", fix), keep_default_na=False, na_values=[""])
        evaluations = pd.read_csv(_require(folder / "evaluations.csv", fix))
        config = chosen["chosen"]
        fixed = importances.dropna(subset=["pruned_to"]).drop_duplicates("parameter")
        fixed_to = {p: _value(v) for p, v in zip(fixed.parameter, fixed.pruned_to)}
        order = ", ".join(f"{p}={fixed_to[p]}" if p in fixed_to else p for p in chosen["fixed_order"])
        task = None
        if (sheet is not None and str(chosen["evaluator"]).startswith("tabular:bpe-paper")
                and set(config) <= set(sheet.columns)):
            match = sheet[(sheet[list(config)] == pd.Series(config)).all(axis=1)]
            task = ", ".join(match.name) if len(match) else "not measured"
        unit = chosen.get("cost_unit", "")
        rows.append({
            "run": f"`{folder.name}`", "evaluator": chosen["evaluator"],
            "chosen configuration": ", ".join(f"{k}={_value(v)}" for k, v in config.items()),
            "on the sheet": task, "Spearman": _f(chosen["spearman"]), "objective": _f(chosen["objective"]),
            "cost": _f(chosen["cost"]), "cost unit": unit.split(" (")[0] if unit else None,
            "evaluations": chosen.get("evaluations", len(evaluations)),
            "Spearman of all evaluations": f"{_f(evaluations.spearman.min())} to {_f(evaluations.spearman.max())}",
            "fixed, in order (to)": order})
    return to_markdown(pd.DataFrame(rows))


def _protocol(results: Path) -> str:
    """The N-sample searches under the papers' batch protocols (``results/search-protocol/*/study.csv``):
    per estimator and N, ours beside the published C10 means, with the fraction of 3-run subsets of
    ours that reach a 3-run published mean."""
    studies = sorted((results / "search-protocol").glob("*/study.csv"))
    if not studies:
        raise ResultsMissing(f"{results / 'search-protocol'} holds no study",
                             "run ./reproduce.sh protocol (hours; resumable)")
    rows = []
    for path in studies:
        table = pd.read_csv(path)
        for n, group in table.groupby("N", sort=True):
            row = {"estimator": path.parent.name, "N": int(n)}
            for label in ("C10 val", "C10 test"):
                r = group[group.metric == label]
                if r.empty:
                    continue
                r = r.iloc[0]
                row["runs"] = int(r.runs)
                row[f"{label} ours"] = f"{r['mean']:.2f}±{r['std']:.2f}" if r.runs >= 2 else f"{r['mean']:.2f} (1 run)"
                if pd.notna(r.get("published_mean")):
                    row[f"{label} published"] = f"{r.published_mean:.2f}±{r.published_std:.2f} ({int(r.published_runs)})"
                    row[f"{label} Δ"] = f"{r.delta:+.2f}"
                    fraction = r.get("frac_subsets_reaching")
                    if pd.notna(fraction):
                        row[f"{label} reached"] = f"{fraction:.2f}"
                    elif r.get("subsets") == "too few runs" or int(r.runs) < 2:
                        row[f"{label} reached"] = "too few runs"
                    else:
                        row[f"{label} reached"] = "within 2 SE" if r.get("within_2se") in (True, "True") else "beyond 2 SE"
            rows.append(row)
    return to_markdown(pd.DataFrame(rows))


#: group of results/perf/<group>.json -> (what is timed, the baseline, the command that measures it)
BENCHMARK_GROUPS = {
    "nb101_load": ("open a 423,624-cell NB101 store (synthesised at full size) and query one cell by hash",
                   "unpickling the official API's in-memory state for the same cells", "./reproduce.sh bench -k nb101"),
    "nb101_tfrecord_read": ("read a real-format NB101 tfrecord (3,600 records) into arrays, both CRCs checked",
                            "a plain Python loop as the official API reads it (pure-Python CRC, protobuf package)",
                            "./reproduce.sh bench -k nb101"),
    "nb201_load": ("load every column of the NB201 store in a fresh process",
                   "the benchmark's CSV tables read with pandas", "./reproduce.sh bench -k nb201_load"),
    "nb201_query_15625": ("one validation-accuracy query for each of the 15,625 cells (vectorised)",
                          "one string-keyed dict lookup per cell, as the official API", "./reproduce.sh bench -k query"),
    "epe_nas_cells_per_s": ("EPE-NAS on 8 seeded cells, batch 256, identical scores",
                            "a loop written like the official code (weight gradients, numpy corrcoef)",
                            "./reproduce.sh bench -k estimator_speed"),
    "naswot_cells_per_s": ("NASWOT on 8 seeded cells, batch 256, identical scores",
                           "a loop written like the official code (forward and backward, numpy kernel)",
                           "./reproduce.sh bench -k estimator_speed"),
    "epe_nas_whole_space": ("EPE-NAS on the whole space with --dedupe isomorphic (6,466 networks), projected from 8 "
                            "seeded representatives", "the official loop over all 15,625 cells, projected from 8",
                            "./reproduce.sh bench -k whole_space"),
    "naswot_whole_space": ("NASWOT on the whole space with --dedupe isomorphic (6,466 networks), projected from 8 "
                           "seeded representatives", "the official loop over all 15,625 cells, projected from 8",
                           "./reproduce.sh bench -k whole_space"),
    "rea_500_runs": ("500 REA runs on the tabular benchmark (12,000 s budget each)",
                     "NB201's regularized_evolution loop over string keys", "./reproduce.sh bench -k search_speed"),
    "trainer_throughput": ("the BPE trainer: images per second of real training",
                           "a plain per-image DataLoader loop", "./reproduce.sh bench -k trainer"),
}


def _group_info(group: str, entry: dict) -> tuple[str, str, str]:
    """(what is timed, the baseline, the command) of a benchmark group."""
    if group in BENCHMARK_GROUPS:
        return BENCHMARK_GROUPS[group]
    label = entry.get("extra", {}).get("estimator")
    if label:  # perf/test_estimator_throughput.py
        return (f"{label} on {entry['extra'].get('cells', '?')} seeded cells, batch 64",
                "one forward and backward pass (weight gradients) of the same networks",
                "./reproduce.sh bench -k throughput")
    return group, "baseline", "./reproduce.sh bench"


def _time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:,.1f} s"


def _benchmarks(results: Path) -> str:
    """The latest figure of every benchmark group (``results/perf/*.json``), ratio first."""
    folder = results / "perf"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise ResultsMissing(f"{folder}/*.json not found", "run ./reproduce.sh bench on an otherwise idle machine")
    rows = []
    for path in files:
        entry = json.loads(path.read_text())
        if "ratio_baseline_over_ours" not in entry:
            continue
        what, baseline, command = _group_info(path.stem, entry)
        machine = entry.get("machine", {})
        rows.append({"benchmark": f"`{path.stem}`", "what is timed": what, "baseline": baseline,
                     "baseline median": _time(entry["baseline"]["median_s"]),
                     "ours median": _time(entry["ours"]["median_s"]),
                     "ratio": f"{entry['ratio_baseline_over_ours']:.2f}x",
                     "machine": f"{machine.get('cpu_count', '?')} cores, Python {machine.get('python', '?')}",
                     "command": f"`{command}`"})
    return to_markdown(pd.DataFrame(rows))


def _report(results: Path) -> str:
    """The verdict counts of ``results/REPORT.md``, per section (from its ``report/comparisons.csv``)."""
    from .verdicts import VERDICTS

    path = results / "report" / "comparisons.csv"
    if not path.is_file():
        raise ResultsMissing(f"{path} not found", "run nas-harness report --out results")
    table = pd.read_csv(path)
    table = table[table.primary.astype(bool)]
    grid = table.pivot_table(index="section", columns="verdict", values="item", aggfunc="count", fill_value=0)
    grid = grid.reindex(columns=[v for v in VERDICTS], fill_value=0).reindex(list(dict.fromkeys(table.section)))
    grid.loc["all"] = grid.sum()
    return to_markdown(grid.reset_index().rename(columns={"section": "published table"}))


#: the documents with generated blocks (relative to the repository) -> the names of their blocks
DOCUMENTS = {
    "README.md": ("REPORT",),
    "docs/reproduction.md": ("NB201_OPTIMUM", "NB201_FIDELITY", "SEARCH_TABLE", "TRAINING_FREE_1000",
                             "NASLIB_AGREEMENT", "NASLIB_PROTOCOL", "BPE_NB201_CPU", "SUPERNET_TABLE",
                             "SEARCH_BPE_CPU", "BPE_REPLAY", "MIP", "N_SAMPLE_PROTOCOL", "NB101_CORRELATION",
                             "NB101_SEARCH"),
    "perf/README.md": ("BENCHMARKS",),
}

BLOCKS = {"REPORT": _report, "NB201_OPTIMUM": _optimum, "NB201_FIDELITY": _fidelity, "SEARCH_TABLE": _search,
          "TRAINING_FREE_1000": _training_free, "NASLIB_AGREEMENT": _naslib,
          "NASLIB_PROTOCOL": _naslib_protocol, "BPE_NB201_CPU": _bpe_nb201,
          "SUPERNET_TABLE": _supernet, "SEARCH_BPE_CPU": _search_bpe, "BPE_REPLAY": _bpe_replay, "MIP": _mip,
          "N_SAMPLE_PROTOCOL": _protocol, "BENCHMARKS": _benchmarks, "NB101_CORRELATION": _nb101_correlation,
          "NB101_SEARCH": _nb101_search}


def document_blocks(relative: str) -> dict:
    """The generators of the blocks of one document of :data:`DOCUMENTS`."""
    return {name: BLOCKS[name] for name in DOCUMENTS[relative]}


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- {name}_START -->\n)(.*?)(\n<!-- {name}_END -->)", re.S)


def _render(results: Path, blocks: dict | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(block texts, the reason of each block whose source is missing)."""
    bodies, missing = {}, {}
    for name, fn in (BLOCKS if blocks is None else blocks).items():
        try:
            bodies[name] = fn(Path(results))
        except ResultsMissing as err:
            missing[name] = str(err)
    return bodies, missing


def render(results: Path, blocks: dict | None = None) -> dict[str, str]:
    """Each block's text from ``results/``; a block whose source is missing is left out (logged)."""
    bodies, missing = _render(results, blocks)
    for name, reason in missing.items():
        log.warning("README block %s not computed, left as it is: %s", name, reason)
    return bodies


def stale(readme: Path, results: Path, missing_ok: bool = False, blocks: dict | None = None) -> list[str]:
    """Names of the blocks whose README text is not what ``results/`` gives; a block whose source is
    missing counts as stale unless ``missing_ok`` (then it is not checked). ``blocks``: another
    file's blocks (:func:`document_blocks`, e.g. of ``perf/README.md``)."""
    text = Path(readme).read_text()
    bodies, missing = _render(results, blocks)
    out = []
    for name in (BLOCKS if blocks is None else blocks):
        m = _pattern(name).search(text)
        if name in missing:
            if not missing_ok:
                out.append(name)
        elif m is None or m.group(2) != bodies[name]:
            out.append(name)
    return out


def update(readme: Path, results: Path, blocks: dict | None = None) -> list[str]:
    """Rewrite every block from ``results/``; returns the names of the blocks that changed. A block
    whose source is missing is left as it is, with a log line."""
    readme = Path(readme)
    text = readme.read_text()
    changed = []
    for name, body in render(results, blocks).items():
        pattern = _pattern(name)
        if pattern.search(text) is None:
            raise HarnessError(f"{readme} has no {name} block", f"add <!-- {name}_START --> and <!-- {name}_END -->")
        new = pattern.sub(lambda m: m.group(1) + body + m.group(3), text)
        if new != text:
            changed.append(name)
        text = new
    readme.write_text(text)
    return changed
