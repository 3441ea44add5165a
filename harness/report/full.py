"""``nas-harness report``: ``results/REPORT.md``, every published number beside ours with its verdict.

Writes, under the results folder ``root``:

- ``REPORT.md``: the verdict counts first, then one section per published table (the numbers we
  computed in full; those that need data or are not implemented grouped by what they need);
- ``report/comparisons.csv``: every comparison, one row each (:mod:`harness.report.verdicts`);
- ``report/<section>.tex``: the computed rows of each section as a LaTeX ``booktabs`` table;
- ``report/correlation_vs_cost.png``, ``report/search_trajectories.png``: the figures.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pandas as pd

from ..config import BASELINE_SAMPLE as SAMPLE  # the baselines' sample protocol, defined once
from .tables import new_figure, save_figure, write_table, writing
from .verdicts import VERDICTS, collect, counts

log = logging.getLogger(__name__)
COMPUTED = ("reproduced", "differs", "protocol differs")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _num(value, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _digits(section: str) -> int:
    return 3 if "proxies" in section or "configurations" in section else 2


def _ours(row) -> str:
    digits = _digits(row.section)
    text = _num(row.ours, digits)
    if math.isfinite(row.ours_std):
        text += f" ± {row.ours_std:.{digits}f} ({row.ours_runs:.0f} runs)"
    elif math.isfinite(row.ours_lo):
        text += f" [{row.ours_lo:.{digits}f}, {row.ours_hi:.{digits}f}]"
    return text


def _published(row) -> str:
    digits = _digits(row.section)
    text = _num(row.published, digits)
    if math.isfinite(row.published_std) and row.kind == "mean":
        text += f" ± {row.published_std:.{digits}f} ({row.published_runs:.0f} runs)"
    return text


def _section_table(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"published number": rows["item"], "published": rows.apply(_published, axis=1),
                         "ours": rows.apply(_ours, axis=1), "verdict": rows.verdict, "why": rows.detail})


def _md(table: pd.DataFrame) -> str:
    from .tables import to_markdown

    return to_markdown(table.astype(str).replace({"|": "\\|"}, regex=False))


def _latex(table: pd.DataFrame, path: Path) -> None:
    """``table`` as a LaTeX booktabs tabular (pandas' Styler; needs ``\\usepackage{booktabs}``)."""
    body = table.drop(columns="why").rename(columns=lambda c: c.replace("_", " "))
    latex = body.style.hide(axis="index").to_latex(hrules=True, column_format="l" + "r" * (len(body.columns) - 2) + "l")
    latex = latex.replace("±", r"$\pm$").replace("Δ", r"$\Delta$").replace("%", r"\%").replace("_", r"\_")
    with writing(path):
        path.write_text(latex)


# -- figures ------------------------------------------------------------------------------------
def cost_points(root: Path) -> pd.DataFrame:
    """One point per estimator: its Spearman with the 200-epoch test accuracy and its cost per
    cell in seconds, from the folders that hold them (training-free scores and BPE training on
    this CPU; NB201's own 12-epoch budget at its logged 12/200 of the 200-epoch training time)."""
    points = []
    for path in sorted(root.glob("correlate-*/correlation.csv")) + sorted(root.glob("bpe-nb201-cpu/*/correlation.csv")):
        table = pd.read_csv(path)
        if "median_seconds" not in table:
            continue
        for _, r in table[table.truth == "test@200"].iterrows():
            family = "BPE, trained here" if str(r.estimator).startswith("bpe:") else "training-free, here"
            name = str(r.estimator)
            if family.startswith("BPE"):
                name = "bpe " + name.split(":", 1)[1].split("-lr")[0]
            points.append({"family": family, "estimator": name, "cells": int(r.n), "spearman": float(r.spearman),
                           "spearman_lo": float(r.spearman_lo), "spearman_hi": float(r.spearman_hi),
                           "seconds_per_cell": float(r.median_seconds), "where": str(path.relative_to(root.parent))
                           if root.parent in path.parents else str(path)})
    fidelity = root / "nb201" / "nb201_fidelity.csv"
    if fidelity.is_file():
        table = pd.read_csv(fidelity)
        hit = table[(table.dataset == "cifar10") & (table.role == "valid")] if "seconds_per_cell" in table else table.iloc[:0]
        for _, r in hit[hit.seconds_per_cell.notna()].iterrows():
            points.append({"family": "NB201 12-epoch training (its GPU timing)", "estimator": "NB201 12 epochs (valid)",
                           "cells": int(r.n), "spearman": float(r.spearman), "spearman_lo": float(r.spearman_lo),
                           "spearman_hi": float(r.spearman_hi), "seconds_per_cell": float(r.seconds_per_cell),
                           "where": "results/nb201/nb201_fidelity.csv"})
    frame = pd.DataFrame(points)
    if not frame.empty:
        from ..bpe.replay import pareto_front

        frame = frame.drop_duplicates(subset=["family", "estimator"], keep="first").reset_index(drop=True)
        ok = frame.spearman.notna() & (frame.seconds_per_cell > 0)
        frame["pareto"] = False
        frame.loc[ok, "pareto"] = pareto_front(frame.seconds_per_cell[ok].to_numpy(), frame.spearman[ok].to_numpy())
    return frame


def cost_figure(points: pd.DataFrame, out: Path) -> Path | None:
    if points.empty:
        return None
    fig, ax = new_figure(figsize=(7.0, 4.6))
    markers = {"training-free, here": "o", "BPE, trained here": "s", "NB201 12-epoch training (its GPU timing)": "*"}
    for family, group in points.groupby("family"):
        ax.errorbar(group.seconds_per_cell, group.spearman,
                    yerr=[group.spearman - group.spearman_lo, group.spearman_hi - group.spearman],
                    fmt=markers.get(family, "o"), ms=6, capsize=2, lw=0.8, label=family)
        for _, r in group.iterrows():
            ax.annotate(r.estimator, (r.seconds_per_cell, r.spearman), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
    front = points[points.pareto].sort_values("seconds_per_cell")
    ax.plot(front.seconds_per_cell, front.spearman, "k--", lw=0.8, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("cost per cell (seconds; this 2-core CPU unless marked)")
    ax.set_ylabel("Spearman with 200-epoch test accuracy")
    ax.set_title("Correlation against cost per NB201 cell (CIFAR-10)", fontsize=9)
    ax.axhline(0, color="grey", lw=0.5)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, out, "correlation_vs_cost")


def trajectory_figure(root: Path, out: Path) -> Path | None:
    """Every strategy's incumbent curve (``search``'s ``trajectory.csv``) on one figure."""
    curves = []
    for path in sorted(root.glob("search/*/trajectory.csv")):
        table = pd.read_csv(path)
        if {"simulated_s", "mean", "std"} <= set(table.columns) and len(table):
            curves.append((path.parent.name, table))
    if not curves:
        return None
    fig, ax = new_figure(figsize=(7.0, 4.4))
    for name, table in curves:
        ax.plot(table.simulated_s, table["mean"], lw=1.2, label=name)
        ax.fill_between(table.simulated_s, table["mean"] - table["std"], table["mean"] + table["std"], alpha=0.12)
    ax.set_xscale("symlog", linthresh=100)
    ax.set_xlabel("simulated seconds (NB201's logged training time)")
    ax.set_ylabel(f"{curves[0][1].metric.iloc[0]} of the incumbent (%)")
    ax.set_title("Search trajectories on NB201 (mean ± std over runs)", fontsize=9)
    ax.legend(fontsize=6, ncol=2, loc="lower right")
    return save_figure(fig, out, "search_trajectories")




def estimator_table(root: Path) -> pd.DataFrame:
    """Every estimator scored on the baselines' sample (a ``correlate`` folder whose manifest has
    :data:`SAMPLE`'s protocol: 1,000 cells, seed 0, a batch of 64, seed 42, CIFAR-10): Spearman
    and Kendall with the 200-epoch test accuracy, Spearman with valid@200 beside the published
    |Spearman| where the zero-cost paper has one, seconds per cell; best first."""
    from . import baselines
    from .tables import read_manifest

    published = baselines.load("zero_cost_nb201")
    published = published[published.dataset == "cifar10"].set_index("estimator").value
    rows = []
    for path in sorted(root.glob("correlate-*/correlation.csv")):
        opts = (read_manifest(path.parent) or {}).get("options", {})
        if any(opts.get(k) != v for k, v in SAMPLE.items()) or opts.get("dedupe") not in (None, "none", ""):
            continue
        table = pd.read_csv(path)
        for estimator, group in table.groupby("estimator", sort=False):
            by = group.set_index("truth")
            if "test@200" not in by.index:
                continue
            test, valid = by.loc["test@200"], by.loc["valid@200"] if "valid@200" in by.index else None
            base = str(estimator).split(":")[0]
            rows.append({"estimator": estimator, "cells": int(test.n), "failed": int(test.get("failed", 0)),
                         "spearman test@200": f"{test.spearman:.3f} [{test.spearman_lo:.3f}, {test.spearman_hi:.3f}]",
                         "kendall test@200": f"{test.kendall:.3f}",
                         "spearman valid@200": f"{valid.spearman:.3f}" if valid is not None else "–",
                         "published abs. spearman (valid@200)": (f"{published[base]:.3f}" if base in published.index
                                                                  else "–"),
                         "seconds per cell": f"{test.median_seconds:.4f}",
                         "folder": path.parent.relative_to(root).as_posix(), "_order": float(test.spearman)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.drop_duplicates(subset="estimator", keep="first")
    return frame.sort_values("_order", ascending=False).drop(columns="_order").reset_index(drop=True)


# -- the report ---------------------------------------------------------------------------------
def summary_line(table: pd.DataFrame) -> str:
    """``**N verdicts on M published numbers: ...**`` (a BPE configuration's Spearman gets two: the
    sheet's own accuracies replayed, and our own training of its cells)."""
    from . import baselines

    n = counts(table)
    published = sum(len(baselines.load(name)) for name in baselines.names())
    return (f"**{int(table.primary.sum())} verdicts on {published} published numbers: "
            + ", ".join(f"{n[v]} {v}" for v in VERDICTS) + "**")


def write_full_report(root: str | Path = "results") -> tuple[Path, pd.DataFrame]:
    """Write ``root/REPORT.md`` and ``root/report/`` (see the module docstring); returns the
    report's path and the comparisons (one row each)."""
    root = Path(root)
    out = root / "report"
    table = collect(root)
    write_table(table, out, "comparisons", "Every published number beside ours, with its verdict",
                "One row per (published number, table of ours); `primary`: the one the verdict counts use. "
                "See harness/report/verdicts.py for the rules.", digits=4)
    figures = {}
    points = cost_points(root)
    if not points.empty:
        write_table(points, out, "correlation_vs_cost", "Spearman against cost per cell", digits=4)
        figures["Correlation against cost per cell, every estimator (Pareto front dashed)"] = cost_figure(points, out)
    path = trajectory_figure(root, out)
    if path:
        figures["Search trajectories of every strategy"] = path
    for mip in sorted(root.glob("mip/*/importances.png")):
        figures[f"MIP importances per iteration ({mip.parent.name})"] = mip
    for extra, title in (("bpe-replay/correlation_vs_cost.png", "The BPE paper's 32 configurations: Spearman "
                                                                "against GPU-hours (its sheet, replayed)"),):
        if (root / extra).is_file():
            figures[title] = root / extra

    lines = ["# Reproduction report", "",
             "Written by `nas-harness report` from the tables in this folder: every number of `baselines/` (the "
             "published ones, each with its source) beside the one we computed, with a verdict.", "",
             summary_line(table), "",
             "Verdicts: **reproduced**: means within two standard errors (Welch's t; a published mean of at most 10 "
             "runs is taken as one such draw of our protocol), a published correlation inside our 95 % bootstrap "
             "interval, or a looked-up value equal at its printed precision; **differs**: outside that (the size, its "
             "standard error and p are given); **protocol differs**: ours ran under another protocol, named; "
             "**needs data**: the file and command that would compute it; **not implemented**: no command of the "
             "harness computes it yet. When several of our tables answer one published number, the one under the "
             "published protocol (then with default options) counts; the others are listed as variants.", ""]
    ranking = estimator_table(root)
    if len(ranking):
        write_table(ranking, out, "estimators_on_the_sample", "Every estimator on the baselines' 1,000-cell sample")
        lines += ["## Every estimator on the baselines' 1,000-cell sample", "",
                  "CIFAR-10, 1,000 NB201 cells (seed 0), one batch of 64 training images (seed 42): the protocol of "
                  "the zero-cost paper's batch on our sample; a new method scored with `nas-harness compare NAME` "
                  "lands here, beside every baseline. The published |Spearman| is over all 15,625 cells.", "",
                  _md(ranking.fillna("–")), ""]
    if figures:
        lines += ["## Figures", ""]
        for title, path in figures.items():
            lines.append(f"- [{title}]({Path(path).relative_to(root).as_posix()})")
        lines.append("")
    for section, rows in table.groupby("section", sort=False):
        n = counts(rows)
        lines += [f"## {section}", "", ", ".join(f"{n[v]} {v}" for v in VERDICTS if n[v]) + ".", ""]
        computed = rows[rows.verdict.isin(COMPUTED)]
        main, variants = computed[computed.primary], computed[~computed.primary]
        if len(main):
            shown = _section_table(main)
            lines += [_md(shown), ""]
            _latex(shown, out / f"{_slug(section)}.tex")
            lines += [f"LaTeX: [report/{_slug(section)}.tex](report/{_slug(section)}.tex)", ""]
        if len(variants):
            lines += ["<details><summary>" f"{len(variants)} more of ours under other options or protocols"
                      "</summary>", "", _md(_section_table(variants)), "", "</details>", ""]
        missing = rows[~rows.verdict.isin(COMPUTED)]
        for (verdict, why), group in missing.groupby(["verdict", "detail"], sort=False):
            items = "; ".join(group["item"])
            lines += [f"- **{verdict}** ({len(group)}): {why}", f"  <details><summary>which</summary>{items}</details>"]
        if len(missing):
            lines.append("")
    path = root / "REPORT.md"
    with writing(path):
        path.write_text("\n".join(lines))
    log.info("wrote %s: %s", path, summary_line(table).strip("*"))
    return path, table
