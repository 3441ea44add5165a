"""Every estimator's implementation version changes with its definition.

A stored score is keyed by its estimator's version (``@register(..., version="N")``), so a score
computed by an older definition is never read back. This test fails when an estimator's source
(its own module plus the harness modules it imports, e.g. the shared Jacobian helpers) changed
while its version did not: bump the version, then record the new source with

    python -m tests.test_estimator_versions

A change that provably leaves every score bit for bit as it was (a refactor: e.g. fewer waits for
the GPU) may keep its version, so that stored scores stay valid, only with the proof written down:

    python -m tests.test_estimator_versions --refactor NAME "what shows the scores are unchanged"
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
from pathlib import Path

from harness.estimators import ESTIMATORS

RECORD = Path(__file__).with_name("estimator_sources.json")
_SHARED = {"harness.estimators.base", "harness.registry", "harness.errors", "harness.config", "harness.runstore"}


def _modules(module) -> list[str]:
    """The estimator's module and the harness modules it imports (relative imports)."""
    tree = ast.parse(inspect.getsource(module))
    names = {module.__name__}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = module.__name__.rsplit(".", node.level)[0]
            target = f"{base}.{node.module}" if node.module else base
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                try:
                    importlib.import_module(candidate)
                    names.add(candidate)
                except ImportError:
                    names.add(target)
    return sorted(n for n in names if n.startswith("harness.") and n not in _SHARED and n != "harness")


def source_hash(name: str) -> str:
    module = inspect.getmodule(ESTIMATORS.get(name).fn)
    digest = hashlib.sha256()
    for mod in _modules(module):
        digest.update(mod.encode() + b"\0" + inspect.getsource(importlib.import_module(mod)).encode())
    return digest.hexdigest()


def current() -> dict[str, dict[str, str]]:
    return {name: {"version": str(ESTIMATORS.get(name).meta.get("version", "")), "sha256": source_hash(name)}
            for name in ESTIMATORS.list() if ESTIMATORS.origin(name) == "nas-harness"}  # plug-ins keep their own


def test_every_estimator_has_a_version():
    assert all(ESTIMATORS.get(name).meta.get("version") for name in ESTIMATORS.list())


def test_a_changed_estimator_has_a_new_version():
    recorded = json.loads(RECORD.read_text())
    now = current()
    assert set(now) == set(recorded), "an estimator was added or removed: run python -m tests.test_estimator_versions"
    for name, entry in now.items():
        old = recorded[name]
        if entry["sha256"] != old["sha256"]:
            assert entry["version"] != old["version"], (
                f"{name}'s source changed but its version is still {old['version']}: bump version= in its "
                "@register call (its stored scores must not be read back), then run python -m tests.test_estimator_versions")
        assert entry["version"] == old["version"] or entry["sha256"] != old["sha256"], \
            f"{name}'s version changed without a change of source: run python -m tests.test_estimator_versions"


def test_the_hash_sees_a_change_of_a_shared_helper(monkeypatch):
    """jacob_cov's score is computed in jacobian.py: a change there must count as a change of jacob_cov."""
    import harness.estimators.jacobian as jacobian

    before = source_hash("jacob_cov")
    real = inspect.getsource

    def edited(obj):
        text = real(obj)
        return text + "\n# edited\n" if obj is jacobian else text

    monkeypatch.setattr(inspect, "getsource", edited)
    assert source_hash("jacob_cov") != before and "harness.estimators.jacobian" in _modules(
        importlib.import_module("harness.estimators.jacob_cov"))


def write_record(refactors: dict[str, str] | None = None) -> dict:
    """The record with the current sources. A changed source under an unchanged version is refused
    unless ``refactors`` names the estimator with its proof (kept under ``refactors`` in the record)."""
    refactors = refactors or {}
    recorded = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    record = current()
    for name, entry in record.items():
        old = recorded.get(name)
        history = list(old.get("refactors", [])) if old and old["version"] == entry["version"] else []
        if old and old["version"] == entry["version"] and old["sha256"] != entry["sha256"]:
            if name not in refactors:
                raise SystemExit(f"{name}'s source changed but its version is still {entry['version']}: bump it, or "
                                 f"record a proven refactor with --refactor {name} PROOF")
            history.append({"sha256": old["sha256"], "proof": refactors[name]})
        if history:
            entry["refactors"] = history
    RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def test_every_kept_version_across_a_change_has_its_proof():
    for name, entry in json.loads(RECORD.read_text()).items():
        for step in entry.get("refactors", []):
            assert len(step["proof"].split()) >= 5, f"{name}: a refactor kept version {entry['version']} without a proof"


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="record the estimators' sources and versions")
    parser.add_argument("--refactor", nargs=2, action="append", default=[], metavar=("NAME", "PROOF"))
    args = parser.parse_args()
    write_record(dict(args.refactor))
    print(f"wrote {RECORD}")
