"""Every published number beside ours, with a verdict from the statistics both sides give.

:func:`collect` walks ``baselines/`` row by row and looks in a results folder for the table that
computed the same number; it returns one :class:`Comparison` per (published number, table of
ours), judged by :func:`judge`:

- ``reproduced``: means within two standard errors (Welch's t with both spreads; a published mean
  over at most ``FEW_RUNS`` runs is taken as one such draw of our protocol, whose spread our runs
  measure, as :func:`harness.report.search.consistent` does); a correlation whose published value
  lies inside our 95 % bootstrap interval; an exact value (a table lookup) equal to the published
  one at its printed precision;
- ``differs``: outside that, with the difference, its standard error and a two-sided p-value;
- ``protocol differs``: ours was computed under another protocol (named: batch, search images, ...);
  the statistics are still given;
- ``needs data``: no table of ours yet; names the file and the command that writes it;
- ``not implemented``: no command of the harness computes it yet (named).

Nothing here writes files: :mod:`harness.report.full` does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import HarnessError
from . import baselines
from .search import FEW_RUNS, PUBLISHED_NAME, images_match
from .tables import read_manifest

VERDICTS = ("reproduced", "differs", "protocol differs", "needs data", "not implemented")
SHORT = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}
# The batch protocol of each published N-sample search (papers.md sections 2 and 3).
PUBLISHED_BATCH = {"epe_nas": "a fresh batch of 256 augmented images per cell",
                   "naswot": "one batch of 128 per run"}


@dataclass
class Comparison:
    """One published number and ours. ``kind``: ``mean`` (a mean over runs, with std and runs),
    ``correlation`` (ours with a 95 % interval ``ours_lo``..``ours_hi``) or ``exact``
    (``tolerance``: half a unit of the published value's last printed digit)."""

    section: str
    item: str
    published: float
    source: str
    kind: str = "exact"
    published_std: float = math.nan
    published_runs: float = math.nan
    tolerance: float = 0.005
    ours: float = math.nan
    ours_std: float = math.nan
    ours_runs: float = math.nan
    ours_lo: float = math.nan
    ours_hi: float = math.nan
    where: str = ""
    protocol: tuple[str, ...] = field(default=())
    needs: str = ""
    verdict: str = ""
    delta: float = math.nan
    se: float = math.nan
    p_value: float = math.nan
    detail: str = ""
    primary: bool = True  # the one of ours that the verdict counts give this published number

    def row(self) -> dict:
        d = asdict(self)
        d["protocol"] = "; ".join(self.protocol)
        return d


def mean_test(mean: float, std: float, runs: float, pub_mean: float, pub_std: float, pub_runs: float):
    """(delta, se, df, p) comparing our mean over ``runs`` (``std`` with ddof 0, as the tables
    print it) with a published one; the rule of :func:`harness.report.search.consistent`, with a
    two-sided p-value from Student's t (Welch-Satterthwaite degrees of freedom)."""
    delta = mean - pub_mean
    if not (runs >= 2 and all(math.isfinite(v) for v in (mean, std, pub_mean))):
        return delta, math.nan, math.nan, math.nan
    s2 = std ** 2 * runs / (runs - 1)
    if not math.isfinite(pub_runs) or pub_runs < 1 or not math.isfinite(pub_std):
        se, df = math.sqrt(s2 / runs), runs - 1
    elif pub_runs <= FEW_RUNS:
        se, df = math.sqrt(s2 * (1 / runs + 1 / pub_runs)), runs - 1
    else:
        p2 = pub_std ** 2 * pub_runs / (pub_runs - 1) if pub_runs > 1 else 0.0
        a, b = s2 / runs, p2 / pub_runs
        se = math.sqrt(a + b)
        df = (a + b) ** 2 / (a ** 2 / (runs - 1) + (b ** 2 / (pub_runs - 1) if pub_runs > 1 else 0.0))
    if se == 0:
        return delta, 0.0, df, 1.0 if delta == 0 else 0.0
    return delta, se, df, float(2 * stats.t.sf(abs(delta / se), df))


def judge(c: Comparison) -> Comparison:
    """Fill ``verdict``, ``delta``, ``se``, ``p_value`` and ``detail`` (see the module docstring)."""
    if c.needs:
        c.verdict = "not implemented" if c.needs.startswith("not implemented") else "needs data"
        c.detail = c.needs.removeprefix("not implemented: ").removeprefix("needs data: ")
        return c
    if c.kind == "mean":
        c.delta, c.se, _, c.p_value = mean_test(c.ours, c.ours_std, c.ours_runs, c.published,
                                                c.published_std, c.published_runs)
        few = math.isfinite(c.published_runs) and c.published_runs <= FEW_RUNS
        ok = math.isfinite(c.se) and abs(c.delta) <= 2 * c.se
        rule = (f"published mean as one {c.published_runs:.0f}-run draw of our protocol" if few else "Welch's t")
        stat = f"Δ {c.delta:+.2f} ± {c.se:.2f} (SE), p = {c.p_value:.2g}, {rule}"
    elif c.kind == "correlation":
        c.delta = c.ours - c.published
        ok = c.ours_lo <= c.published <= c.ours_hi
        lo, hi = (np.arctanh(np.clip([c.ours_lo, c.ours_hi], -0.999999, 0.999999)))
        c.se = float((hi - lo) / (2 * 1.959964))  # Fisher z, from our bootstrap interval
        z = (np.arctanh(np.clip(c.ours, -0.999999, 0.999999)) - np.arctanh(np.clip(c.published, -0.999999, 0.999999)))
        c.p_value = float(2 * stats.norm.sf(abs(z) / c.se)) if c.se > 0 else math.nan
        stat = (f"Δ {c.delta:+.3f}; published {'inside' if ok else 'outside'} our 95 % CI "
                f"[{c.ours_lo:.3f}, {c.ours_hi:.3f}], p = {c.p_value:.2g} (Fisher z)")
    else:
        c.delta = c.ours - c.published
        ok = abs(c.delta) <= c.tolerance + 1e-12
        stat = f"Δ {c.delta:+.4g} (tolerance {c.tolerance:g})"
    if c.protocol:
        c.verdict, c.detail = "protocol differs", "; ".join(c.protocol) + f" ({stat})"
    else:
        c.verdict, c.detail = ("reproduced" if ok else "differs"), stat
    return c


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _options(folder: Path) -> dict:
    manifest = read_manifest(folder)
    return (manifest or {}).get("options", {})


# -- the sections ----------------------------------------------------------------------------------
def optimum(root: Path) -> list[Comparison]:
    """NB201's optimal cell per dataset and split (``report nb201``)."""
    published = baselines.load("nb201_optimum")
    path = root / "nb201" / "nb201_optimum.csv"
    ours = pd.read_csv(path) if path.is_file() else None
    out = []
    for _, p in published.iterrows():
        c = Comparison("NB201 optimum", f"best cell, {p.label}", float(p.value), p.source)
        short = {v: k for k, v in SHORT.items()}[p.label.split()[0]]
        role = "valid" if p.label.endswith("val") else "test"
        if ours is None:
            c.needs = (f"{_rel(path, root)}: `nas-harness report nb201 --out results/nb201` (needs NB201's tables: "
                       "`nas-harness data fetch nb201-compact`)")
        else:
            hit = ours[(ours.dataset == short) & (ours.selected_by == role)]
            c.ours = float(hit.iloc[0][f"{role}_acc"]) if len(hit) else math.nan
            c.where = _rel(path, root)
        out.append(judge(c))
    return out


def zero_cost(root: Path) -> list[Comparison]:
    """Abdelfattah et al.'s |Spearman| per proxy (``correlate``'s ``published.csv``)."""
    published = baselines.load("zero_cost_nb201")
    found: dict[str, list[tuple[Path, pd.DataFrame, dict]]] = {}
    nb101_found: list[tuple[Path, pd.DataFrame, dict]] = []
    for path in sorted(root.glob("*/published.csv")):
        opts = _options(path.parent)
        if opts.get("space") == "nb101":
            nb101_found.append((path, pd.read_csv(path), opts))
            continue
        dataset = opts.get("dataset") or next((d for d in ("cifar100", "ImageNet16-120", "cifar10")
                                               if f"-{d}" in path.parent.name), None)
        found.setdefault(dataset, []).append((path, pd.read_csv(path), opts))
    out = []
    for _, p in published.iterrows():
        item = f"{p.estimator}, {SHORT[p.dataset]}, |Spearman| vs {p.truth}"
        hits = []
        for path, table, opts in found.get(p.dataset, []):
            for _, r in table[(table.estimator.str.split(":").str[0] == p.estimator) & (table.truth == p.truth)].iterrows():
                hits.append((path, r, opts))
        if not hits:
            c = Comparison("Zero-cost proxies on NB201", item, float(p.value), p.source, kind="correlation")
            c.needs = (f"results/correlate-{p.dataset}/published.csv: `nas-harness correlate --dataset {p.dataset} "
                       "--estimators grad_norm,snip,grasp,fisher,synflow,jacob_cov --archs 1000 --seed 0 --batch-size 64 "
                       f"--batch-seed 42 --out results/correlate-{p.dataset}` " + (
                       "(images: `nas-harness data fetch cifar100`)" if p.dataset == "cifar100" else
                       "(needs NB201's ImageNet16 pickles under HARNESS_DATA/images/ImageNet16: no public download)"))
            out.append(judge(c))
            continue
        mine = []
        for path, r, opts in hits:
            c = Comparison("Zero-cost proxies on NB201", f"{r.estimator}, {SHORT[p.dataset]}, Spearman vs {p.truth} "
                           f"({int(r.n)} of {int(p.cells)} cells)", float(p.value), p.source, kind="correlation",
                           ours=float(r.ours_spearman), ours_lo=float(r.ours_lo), ours_hi=float(r.ours_hi),
                           where=_rel(path, root))
            diffs = []
            for key, want in (("batch_size", int(p.batch_size)), ("batch_seed", int(p.batch_seed))):
                if key in opts and opts[key] is not None and int(opts[key]) != want:
                    diffs.append(f"{key.replace('_', ' ')} {opts[key]} vs {want}")
            c.protocol = tuple(diffs)
            judge(c)
            if not opts:
                c.detail += "; protocol not recorded (the folder has no manifest.json)"
            mine.append((c, opts))
        # first: a recorded protocol equal to the paper's, then the most cells
        mine.sort(key=lambda item: (bool(item[0].protocol), not item[1], -int(item[0].item.split("(")[-1].split()[0])))
        for i, (c, _) in enumerate(mine):
            c.primary = i == 0
        out += [c for c, _ in mine]
    return out + zero_cost_nb101(root, nb101_found)


NB101_COMMAND = ("nas-harness correlate --space nb101 --source vis --dataset cifar10 --estimators "
                 "grad_norm,snip,grasp,fisher,synflow,jacob_cov --archs 1000 --seed 0 --batch-size 64 --batch-seed 42 "
                 "--out results/correlate-nb101")


def zero_cost_nb101(root: Path, found: list[tuple[Path, pd.DataFrame, dict]]) -> list[Comparison]:
    """Abdelfattah et al.'s NB101 |Spearman| per proxy (all 423,624 cells, test accuracy) beside
    ``correlate --space nb101``'s ``published.csv``: a sample of the cells, and, where the store
    lacks test accuracy on them, the best repeat's validation accuracy (a protocol difference)."""
    out = []
    for _, p in baselines.load("zero_cost_nb101").iterrows():
        item = f"{p.estimator}, |Spearman| vs {p.truth}"
        mine = []
        for path, table, opts in found:
            for _, r in table[table.estimator.str.split(":").str[0] == p.estimator].iterrows():
                c = Comparison("Zero-cost proxies on NAS-Bench-101", f"{r.estimator}, Spearman vs {r.truth} "
                               f"({int(r.n)} of {int(p.cells):,} cells)", float(p.value), p.source, kind="correlation",
                               ours=float(r.ours_spearman), ours_lo=float(r.ours_lo), ours_hi=float(r.ours_hi),
                               where=_rel(path, root))
                diffs = []
                if r.truth != p.truth:
                    diffs.append(f"truth {r.truth} vs {p.truth} (the store's {p.truth} covers fewer of these cells)")
                for key, want in (("batch_size", int(p.batch_size)), ("batch_seed", int(p.batch_seed))):
                    if key in opts and opts[key] is not None and int(opts[key]) != want:
                        diffs.append(f"{key.replace('_', ' ')} {opts[key]} vs {want}")
                c.protocol = tuple(diffs)
                mine.append(judge(c))
        if not mine:
            c = Comparison("Zero-cost proxies on NAS-Bench-101", item, float(p.value), p.source, kind="correlation")
            c.needs = f"results/correlate-nb101/published.csv: `{NB101_COMMAND}` (hours on 2 CPU cores; resumable)"
            out.append(judge(c))
            continue
        mine.sort(key=lambda c: (len(c.protocol), -int(c.item.split("(")[-1].split()[0])))
        for i, c in enumerate(mine):
            c.primary = i == 0
        out += mine
    return out


def _summaries(root: Path) -> list[tuple[Path, pd.DataFrame]]:
    found = []
    for path in sorted(root.glob("**/summary.csv")):
        table = pd.read_csv(path)
        if {"strategy", "estimator", "metric", "mean", "published_mean"} <= set(table.columns):
            found.append((path, table))
    return found


def search(root: Path) -> list[Comparison]:
    """NB201's search table (``search``, ``n-sample``, ``supernet`` summaries)."""
    published = baselines.load("nb201_search")
    summaries = _summaries(root)
    out = []
    for _, p in published.iterrows():
        n = pd.to_numeric(p.n, errors="coerce")
        what = f"N = {int(n)}" if pd.notna(n) else p.budget
        item = f"{p.strategy} {p.estimator} ({what}), {p.label}"
        hits = []
        for path, table in summaries:
            rows = table[(table.strategy == p.strategy) & (table.metric == p.label) & table.published_mean.notna()]
            rows = rows[np.isclose(rows.published_mean.astype(float), float(p["mean"]))
                        & rows.estimator.map(lambda e: PUBLISHED_NAME.get(e, e).rsplit(":", 1)[0]
                                             if e.count(":") == 2 else PUBLISHED_NAME.get(e, e)).eq(p.estimator)]
            if pd.notna(n) and "cells" in rows:
                rows = rows[pd.to_numeric(rows.cells, errors="coerce") == n]
            elif p.estimator.startswith("tabular"):
                rows = rows[rows.budget == p.budget]
            hits += [(path, r) for _, r in rows.iterrows()]
        if not hits:
            c = Comparison("NB201 search", item, float(p["mean"]), p.source, kind="mean",
                           published_std=float(p["std"]), published_runs=float(p.runs))
            c.needs = _search_needs(p)
            out.append(judge(c))
            continue
        mine = []
        for path, r in hits:
            c = Comparison("NB201 search", f"{item} [{_rel(path.parent, root)}]", float(p["mean"]), p.source,
                           kind="mean", published_std=float(p["std"]), published_runs=float(p.runs),
                           ours=float(r["mean"]), ours_std=float(r["std"]), ours_runs=float(r.runs),
                           where=_rel(path, root), protocol=_search_protocol(p, r, path.parent))
            mine.append((judge(c), r))
        out += _choose_primary(mine)
    return out


def _default_options(strategy: str, options) -> bool:
    """Whether a summary's ``options`` (``k=v`` pairs) are the strategy's declared defaults."""
    from ..search.base import declared_options

    text = options if isinstance(options, str) else ""
    pairs = dict(kv.split("=", 1) for kv in text.replace(",", " ").split() if "=" in kv)
    try:
        declared = declared_options(strategy)
    except HarnessError:  # a strategy this harness does not register (a supernet method): options are its budget
        return not pairs
    for key, value in pairs.items():
        if key not in declared:
            return False
        option = declared[key]
        try:
            if (option.kind or type(option.default))(value) != option.default:
                return False
        except (TypeError, ValueError):
            return False
    return True


def _choose_primary(mine: list) -> list[Comparison]:
    """One of ours counts for the published number: the first under the published protocol,
    then with the strategy's default options, then with the most runs; the others are variants."""
    def rank(item):
        c, r = item
        return (bool(c.protocol), not _default_options(str(r.strategy), r.get("options")), -c.ours_runs)

    ordered = sorted(mine, key=rank)
    for i, (c, _) in enumerate(ordered):
        c.primary = i == 0
    return [c for c, _ in ordered]


def _search_protocol(p, r, folder: Path) -> tuple[str, ...]:
    diffs = []
    search_ds = r.get("published_search")
    if isinstance(search_ds, str) and not images_match(search_ds, r.dataset):
        diffs.append(f"searched on {r.dataset} images, the paper on {search_ds}")
    base = PUBLISHED_NAME.get(r.estimator, r.estimator).split(":")[0]
    if p.strategy == "n_sample" and base in PUBLISHED_BATCH:
        opts = str(r.get("options", "") if pd.notna(r.get("options", "")) else "")
        paper = PUBLISHED_BATCH[base]
        per_cell, per_run = "per-cell" in opts, "per-run" in opts
        if base == "epe_nas" and not per_cell or base == "naswot" and not per_run:
            size = _options(folder).get("batch_size")
            ours = (f"a fresh batch per {'cell' if per_cell else 'run'}" if per_cell or per_run else
                    f"one batch{f' of {size}' if size else ''} shared by every cell and run")
            diffs.append(f"batch: {ours}, the paper {paper}")
    if p.estimator == "weight-sharing":
        diffs.append(f"supernet trained under the budget {r.options} on this CPU, the paper with NB201's own "
                     "search settings on a GPU")
    return tuple(diffs)


def _search_needs(p) -> str:
    if p.strategy in ("rsps", "setn", "enas"):
        return f"not implemented: the harness has no {p.strategy.upper()} supernet (DARTS-V1/V2 and GDAS only)"
    if p.strategy in ("darts-v1", "darts-v2", "gdas"):
        return (f"results/supernet-nb201-cpu/{p.strategy}/summary.csv: `nas-harness supernet --method {p.strategy} "
                "--runs 3 --out results/supernet-nb201-cpu` (./reproduce.sh long)")
    if p.strategy == "n_sample":
        est = p.estimator.replace(":", "-")
        n = int(float(p.n))
        return (f"results/search/n_sample-{est}-N{n}/summary.csv: `nas-harness search --strategy n_sample --estimator "
                f"{p.estimator} --budget {n} --runs 500 --seed 0 --out results/search/n_sample-{est}-N{n}` "
                "(./reproduce.sh long; needs HARNESS_DATA images)")
    return (f"results/search/{p.strategy}/summary.csv: `nas-harness search --strategy {p.strategy} --estimator "
            f"{p.estimator} --budget 12000s --runs 500 --seed 0 --out results/search/{p.strategy}` "
            "(./reproduce.sh; needs NB201's 12-epoch tables: `nas-harness data fetch nb201-compact`)")


def bpe(root: Path) -> list[Comparison]:
    """The BPE paper's 32 configurations (``bpe replay``) and its search statistics."""
    out = []
    configs = baselines.load("bpe_configs")
    path = root / "bpe-replay" / "configs.csv"
    ours = pd.read_csv(path) if path.is_file() else None
    for _, p in configs.iterrows():
        label = p.task + (f" ({p.paper_name})" if isinstance(p.paper_name, str) and p.paper_name else "")
        if p.metric == "spearman":
            c = Comparison("BPE configurations", f"{label}, Spearman over 100 DARTS cells, recomputed from the sheet's "
                           "accuracies", float(p.value), p.source, tolerance=5e-4)
            hit = ours[ours.name == p.task] if ours is not None else None
            if hit is None or hit.empty:
                c.needs = (f"{_rel(path, root)}: `nas-harness bpe replay --out results/bpe-replay` (needs the BPE sheet: "
                           "`nas-harness data fetch bpe`)")
            else:
                c.ours, c.where = float(hit.iloc[0].spearman), _rel(path, root)
            out.append(judge(c))
        c = Comparison("BPE configurations", f"{label}, {p.metric.replace('_', ' ')} from our own training",
                       float(p.value), p.source)
        config = (p.paper_name if isinstance(p.paper_name, str) and p.paper_name else
                  f"e{p.epochs}-b{p.batch_size}-lr{p.lr}-l{p.layers}-c{p.channels}-i{p.image_size}-fp{p.precision}-co{p.cutout}")
        c.needs = (f"results/bpe-darts/{p.task}/correlation.csv (the 100 sheet cells trained on a GPU, hours each): "
                   f"`nas-harness bpe darts --config {config} --device cuda --out results/bpe-darts/{p.task}`")
        out.append(judge(c))
    for _, p in baselines.load("bpe_search").iterrows():
        run = " ".join(str(x) for x in (p.run, p.net) if isinstance(x, str) and x)
        c = Comparison("BPE search statistics", f"{p.method.upper()} with {p.setting}"
                       f"{f' ({p.paper_name})' if isinstance(p.paper_name, str) and p.paper_name else ''}"
                       f"{f', {run}' if run else ''}: {p.metric.replace('_', ' ')}", float(p.value), p.source)
        c.needs = ("not implemented: search over the DARTS space with BPE training (the harness searches NB201 with BPE "
                   "rewards: results/search-bpe-cpu)")
        out.append(judge(c))
    return out


SECTIONS = (optimum, zero_cost, search, bpe)


def collect(root: str | Path = "results") -> pd.DataFrame:
    """Every published number of ``baselines/`` with ours from ``root`` and its verdict, one row each."""
    root = Path(root)
    rows = [c.row() for section in SECTIONS for c in section(root)]
    return pd.DataFrame(rows)


def counts(table: pd.DataFrame) -> dict[str, int]:
    """Verdict -> published numbers (each counted once, by its primary comparison), in :data:`VERDICTS` order."""
    table = table[table.primary]
    return {v: int((table.verdict == v).sum()) for v in VERDICTS}
