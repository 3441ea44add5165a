"""The README and the guides: every relative link resolves, and the first screen is a quick start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "baselines" / "README.md",
        ROOT / "examples" / "my-estimator" / "README.md"]


def _anchors(text: str) -> set[str]:
    return {re.sub(r"[^a-z0-9 -]", "", h.strip("# ").lower()).replace(" ", "-")
            for h in re.findall(r"^#+ .*$", text, flags=re.M)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc):
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"(https?:|mailto:)", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file.read_text()), f"{doc.relative_to(ROOT)}: no heading #{anchor} in {path or doc.name}"


def test_the_readme_starts_with_a_quick_start_and_the_guides():
    text = (ROOT / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:40])
    assert "./reproduce.sh" in first_screen and "results/REPORT.md" in text[:4000]
    assert "![" in first_screen, "one picture on the first screen"
    for guide in ("docs/reproduction.md", "docs/data.md", "docs/add-a-method.md", "docs/regression-testing.md"):
        assert guide in text, f"the README does not point to {guide}"
    assert len(text) < 16_000, "the detail belongs in docs/"
