"""Writing tables and plots: tidy CSV (one row per observation), the same table as Markdown, PNG."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def _fmt(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|")  # arch strings hold pipes


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table; floats with ``digits`` decimals, NaN as an en dash."""
    head = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v, digits) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def write_table(table: pd.DataFrame, out: Path, name: str, title: str = "", notes: str = "",
                digits: int = 4) -> tuple[Path, Path]:
    """Write ``out/name.csv`` (full precision) and ``out/name.md``; returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{name}.csv", out / f"{name}.md"
    table.to_csv(csv_path, index=False)
    text = (f"## {title}\n\n" if title else "") + to_markdown(table, digits) + "\n"
    if notes:
        text += "\n" + notes.strip() + "\n"
    md_path.write_text(text)
    log.info("wrote %s and %s", csv_path, md_path)
    return csv_path, md_path


def new_figure(*args, **kwargs):
    """A matplotlib figure on the non-interactive backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, out: Path, name: str) -> Path:
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log.info("wrote %s", path)
    return path
