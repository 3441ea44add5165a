"""Every training run is committed to the run store as it finishes and read back instead of retrained:
supernet searches (table ``runs``, kind ``supernet``), DARTS cells of the BPE sheet and BPE-trained
NB201 cells (scores under :class:`ScoreKey`). Training here is tiny (synthetic 16 px images, 4
channels, one epoch) or stubbed, so nothing needs the full data."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import sqlite3

import pytest
import torch

from harness.bpe import BPEConfig
from harness.bpe.trainer import TrainData
from harness.cli import main
from harness.runstore import RUN_KINDS, RUNS_SCHEMA, RunStore, run_key_json
from harness.search import differentiable as diff

TINY = "e1-b64-lr0.05-l1-c4-i16"  # the supernet at its smallest: one cell per stage, 4 channels, 16 px


class Interrupted(Exception):
    """Stands for a kill or Ctrl-C in the middle of a run."""


@pytest.fixture
def tiny_data(monkeypatch):
    """192 training and 64 validation images (16 px, 10 classes) in place of CIFAR-10: 3 steps a run."""
    gen = torch.Generator().manual_seed(0)
    data = TrainData(torch.randint(0, 256, (192, 3, 16, 16), dtype=torch.uint8, generator=gen),
                     torch.randint(0, 10, (192,), generator=gen),
                     torch.randint(0, 256, (64, 3, 16, 16), dtype=torch.uint8, generator=gen),
                     torch.randint(0, 10, (64,), generator=gen), "cifar10", 10, "synthetic", "synthetic.npz",
                     "cifar10-valid: synthetic halves")
    monkeypatch.setattr(diff, "load_train_data", lambda *args, **kwargs: data)
    return data


@pytest.fixture
def trained(monkeypatch):
    """Records every supernet run actually trained (method, seed); ``fail_on`` makes one raise."""
    calls, real = [], diff.search
    fail_on: set = set()

    def search(method, config, seed=0, device=None, **options):
        if (method, seed) in fail_on:
            fail_on.discard((method, seed))
            raise Interrupted(f"{method} seed {seed}")
        calls.append((method, seed))
        return real(method, config, seed, device, **options)

    monkeypatch.setattr(diff, "search", search)
    search.calls, search.fail_on = calls, fail_on
    return search


def test_a_supernet_run_is_stored_when_it_finishes_and_read_back_without_training(tmp_path, tiny_data,
                                                                                  trained, monkeypatch):
    store = RunStore(tmp_path / "runs.sqlite")
    cfg = BPEConfig.parse(TINY)
    first = diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=store)
    assert not first.cached and trained.calls == [("darts-v1", 0)] and first.steps == 3
    runs = store.runs()
    assert runs.kind.tolist() == ["supernet"] and runs.current.all() and runs.seconds.iloc[0] == first.wall_s
    key = json.loads(runs.key_json.iloc[0])
    assert key == diff.run_key("darts-v1", cfg, 0, torch.device("cpu"), tiny_data, {})
    assert (key["method"], key["config"], key["seed"], key["dataset"], key["split"], key["device"], key["torch"],
            key["dtype"], key["version"]) == ("darts-v1", cfg.label, 0, "cifar10", "cifar10-valid: synthetic halves",
                                              "cpu", torch.__version__, "float32", diff.VERSION)

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(diff, "search", no_training)
    again = diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=store)
    assert again.cached
    assert dataclasses.replace(again, cached=False) == first  # derived cell, alpha, per-epoch log, wall seconds
    assert isinstance(again.ops, tuple) and len(again.history) == 1 and again.alpha_init == first.alpha_init
    # a new store object on the same file (a new process) reads it back too
    assert diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=RunStore(store.path)).cached


def test_the_key_changes_with_whatever_determines_the_run(tmp_path, tiny_data, trained, monkeypatch):
    cfg, cpu = BPEConfig.parse(TINY), torch.device("cpu")
    base = diff.run_key("darts-v1", cfg, 0, cpu, tiny_data, {})
    changed = [diff.run_key("darts-v1", cfg, 1, cpu, tiny_data, {}),
               diff.run_key("darts-v1", BPEConfig.parse(TINY.replace("-c4", "-c8")), 0, cpu, tiny_data, {}),
               diff.run_key("darts-v2", cfg, 0, cpu, tiny_data, {}),
               diff.run_key("darts-v1", cfg, 0, cpu, tiny_data, {"arch_lr": 1e-3}),
               diff.run_key("darts-v1", cfg, 0, cpu, tiny_data, {"arch_data": "train-split"}),
               diff.run_key("darts-v1", cfg, 0, cpu, dataclasses.replace(tiny_data, split="another split"), {}),
               diff.run_key("darts-v1", cfg, 0, torch.device("cuda"), tiny_data, {})]
    assert len({run_key_json(k) for k in [base] + changed}) == len(changed) + 1
    # the defaults spelled out, or as ints, are the same run; the temperature is GDAS's alone
    assert diff.run_key("darts-v1", cfg, 0, cpu, tiny_data, {"arch_lr": 3e-4, "grad_clip": 5, "tau_max": 3}) == base
    gdas = diff.run_key("gdas", cfg, 0, cpu, tiny_data, {})
    assert gdas["tau_max"] == 10.0 and diff.run_key("gdas", cfg, 0, cpu, tiny_data, {"tau_max": 3}) != gdas

    store = RunStore(tmp_path / "runs.sqlite")
    diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=store)
    diff.stored_search("darts-v1", cfg, seed=1, device="cpu", store=store)  # another seed: trained
    diff.stored_search("darts-v1", BPEConfig.parse(TINY.replace("-c4", "-c8")), seed=0, device="cpu", store=store)
    diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=store)  # read back
    assert trained.calls == [("darts-v1", 0), ("darts-v1", 1), ("darts-v1", 0)] and len(store.runs()) == 3
    monkeypatch.setattr(diff, "VERSION", diff.VERSION + "-next")  # the training code changed: its old runs are not read back
    assert not diff.stored_search("darts-v1", cfg, seed=0, device="cpu", store=store).cached
    assert len(trained.calls) == 4


def _supernet(out, *extra):
    return main(["supernet", "--method", "darts-v1", "--bpe", TINY, "--runs", "2", "--device", "cpu",
                 "--out", str(out), *extra])


def test_an_interrupted_supernet_command_keeps_its_finished_runs(tmp_path, tiny_data, trained, monkeypatch, capsys):
    store = RunStore(tmp_path / "runs.sqlite")
    monkeypatch.setattr("harness.runstore.RunStore", lambda: store)
    trained.fail_on.add(("darts-v1", 1))  # run 2 of 2 is interrupted
    with pytest.raises(Interrupted):
        _supernet(tmp_path / "out")
    assert trained.calls == [("darts-v1", 0)] and len(store.runs()) == 1  # run 1 was kept
    assert not (tmp_path / "out" / "runs.csv").exists()
    assert _supernet(tmp_path / "out") == 0
    assert trained.calls == [("darts-v1", 0), ("darts-v1", 1)]  # the rerun trained only run 2
    assert "darts-v1: 1 run(s) trained, 1 read back" in capsys.readouterr().out
    assert (tmp_path / "out" / "runs.csv").is_file() and len(store.runs()) == 2

    # the outputs cannot be written after training: nothing trained is lost
    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    import harness.report.supernet as supernet_report

    real_write = supernet_report.write_differentiable
    monkeypatch.setattr(supernet_report, "write_differentiable", full_disk)
    assert _supernet(tmp_path / "other", "--seed", "5") == 2
    assert trained.calls[2:] == [("darts-v1", 5), ("darts-v1", 6)] and len(store.runs()) == 4
    monkeypatch.setattr(supernet_report, "write_differentiable", real_write)
    assert _supernet(tmp_path / "other", "--seed", "5") == 0 and len(trained.calls) == 4
    assert "darts-v1: 0 run(s) trained, 2 read back" in capsys.readouterr().out
    assert (tmp_path / "other" / "alpha.csv").is_file()


def test_runs_list_counts_training_runs_per_kind_and_clears_them(tmp_path, tiny_data, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    store = RunStore()
    for seed in (0, 1):
        diff.stored_search("gdas", BPEConfig.parse(TINY), seed=seed, device="cpu", store=store)
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"| supernet | {diff.VERSION} | 1 | 2 |" in out and "no scores in" in out
    assert main(["runs", "list", "--kind", "supernet"]) == 0 and f"| supernet | {diff.VERSION} | 1 | 2 |" in capsys.readouterr().out
    # a row of another schema, and runs of older code, are never read back: listed and cleared as stale
    key = {"method": "gdas", "seed": 9}
    store.db.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                     ("supernet", run_key_json(key), "{}", RUNS_SCHEMA + 1, "1", 1.0, "host", 0.0))
    store.db.commit()
    assert store.get_run("supernet", key) is None
    monkeypatch.setitem(RUN_KINDS, "supernet", diff.VERSION + "-next")
    assert main(["runs", "list", "--stale"]) == 0 and f"| supernet | {diff.VERSION} | 1 | 2 |" in capsys.readouterr().out
    assert main(["runs", "clear", "--stale"]) == 0
    assert "removed 0 stored scores and 3 training runs" in capsys.readouterr().out and store.runs().empty
    diff.stored_search("gdas", BPEConfig.parse(TINY), seed=0, device="cpu", store=store)
    assert main(["runs", "clear", "--kind", "supernet"]) == 0
    assert "removed 1 training runs" in capsys.readouterr().out and store.runs().empty
    assert main(["runs", "list", "--kind", "supernet"]) == 0 and "no training runs" in capsys.readouterr().out


def test_a_store_written_before_the_runs_table_gains_it(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(path)  # as an older harness left it: scores only
    db.execute("DROP TABLE runs")
    db.commit()
    db.close()
    store = RunStore(path)
    assert store.runs().empty and store.frame().empty
    store.put_run("supernet", {"seed": 0, "version": "1"}, {"arch": "a", "loss": float("nan")}, 2.0)
    record = store.get_run("supernet", {"version": "1", "seed": 0})  # key order does not matter
    assert record["arch"] == "a" and record["loss"] != record["loss"]  # NaN in a result survives
    with pytest.raises(Exception, match="plain finite JSON"):
        store.get_run("supernet", {"lr": float("nan")})


# -- DARTS cells and BPE-trained NB201 cells: already scores in the run store ------------------
def test_darts_cells_are_stored_one_by_one_and_an_interrupted_run_trains_only_the_rest(tmp_path, monkeypatch):
    from harness.bpe import darts_cells
    from harness.spaces import darts as darts_space

    truth = darts_space.load_ground_truth().iloc[:3]
    monkeypatch.setattr(darts_space, "load_ground_truth", lambda path=None: truth)
    monkeypatch.setattr(darts_cells, "load_train_data", lambda *a, **k: type("Data", (), {"note": "stub"})())
    calls, fail_on = [], set()

    def train_darts(genotype, config, data, seed):
        if seed in fail_on:
            fail_on.discard(seed)
            raise Interrupted(seed)
        calls.append(seed)
        return type("Result", (), {"valid_acc": 50.0 + seed % 7})()

    monkeypatch.setattr(darts_cells, "train_darts", train_darts)
    store = RunStore(tmp_path / "runs.sqlite")
    cfg = BPEConfig.parse("e1-b64-l3-c4-i16")
    seeds = [int(i) for i in truth.arch_index]  # init seed 0 + the arch number
    fail_on.add(seeds[1])
    with pytest.raises(Interrupted):
        darts_cells.train_sheet_cells(cfg, store=store, device="cpu")
    assert calls == seeds[:1] and len(store.frame()) == 1
    frame = darts_cells.train_sheet_cells(cfg, store=store, device="cpu")
    assert calls == seeds and frame.cached.tolist() == [True, False, False]
    assert darts_cells.train_sheet_cells(cfg, store=store, device="cpu").cached.all() and calls == seeds
    darts_cells.train_sheet_cells(cfg, store=store, device="cpu", init_seed=1)  # another seed: trained
    darts_cells.train_sheet_cells(BPEConfig.parse("e2-b64-l3-c4-i16"), store=store, device="cpu")  # another BPE
    assert len(calls) == 9 and len(store.frame()) == 9
    keys = store.frame()
    assert set(keys.space) == {"darts-bpe-sheet"} and set(keys.init_seed) == {0, 1} and keys.variant.nunique() == 2


def test_bpe_trained_nb201_cells_are_stored_one_by_one(tmp_path, monkeypatch, nb201):
    from harness.bpe import trainer
    from harness.estimators.run import EstimatorSpec, score_cells

    calls, fail_on = [], set()

    def train_nb201(arch, config, data, seed=0):
        if seed in fail_on:
            fail_on.discard(seed)
            raise Interrupted(seed)
        calls.append(seed)
        return type("Result", (), {"valid_acc": 40.0 + seed})()

    monkeypatch.setattr(trainer, "load_train_data", lambda *a, **k: None)
    monkeypatch.setattr(trainer, "train_nb201", train_nb201)
    store = RunStore(tmp_path / "runs.sqlite")
    spec = EstimatorSpec.parse("bpe:e1-b64-l1-c4-i16")

    def run(init_seed=0, spec=spec):
        return score_cells(nb201.arch, [0, 1, 2], "cifar10", [spec], batch_size=1, batch_seed=0, init_seed=init_seed,
                           device=torch.device("cpu"), store=store)

    fail_on.add(1)
    with pytest.raises(Interrupted):
        run()
    assert calls == [0] and len(store.frame()) == 1
    assert run().cached.tolist() == [True, False, False] and calls == [0, 1, 2]
    assert run().cached.all() and calls == [0, 1, 2]
    run(init_seed=10)  # another init seed: trained again
    run(spec=EstimatorSpec.parse("bpe:e2-b64-l1-c4-i16"))  # another BPE
    assert calls == [0, 1, 2, 10, 11, 12, 0, 1, 2] and len(store.frame()) == 9


def test_the_trainer_names_its_images_and_split_protocol(harness_data):
    from pathlib import Path

    from harness.bpe.trainer import load_train_data
    from harness.data.images import cifar10_valid_protocol

    data = load_train_data("cifar10", 0.01)
    assert data.split == cifar10_valid_protocol()
    assert data.source.endswith(".npz") or Path(data.source).is_dir()
    if "cifar-split.txt" not in data.split:  # the seeded halves: the note (a DARTS-cell key) is unchanged
        assert data.split == "cifar10-valid: seeded (seed 0) class-stratified halves"
        assert "cifar-split" not in data.note and data.note.endswith("from the valid half; test set unused")
    assert cifar10_valid_protocol(Path("cifar-split.txt")) == "cifar10-valid: NB201's cifar-split.txt"


def test_training_runs_travel_by_export_and_import(tmp_path, monkeypatch, capsys):
    """runs export FILE.jsonl.gz / runs import: the training runs move to another machine's store;
    an import keeps what is there (unless --replace); a damaged file or an unknown suffix: one line."""
    from harness.cli import main

    monkeypatch.setitem(RUN_KINDS, "unit", "1")  # a kind of this test only
    here = RunStore(tmp_path / "here" / "runs.sqlite")
    here.put_run("unit", {"seed": 0, "version": "1"}, {"acc": 91.5, "alpha": [[0.1, float("nan")]]}, 12.0)
    here.put_run("unit", {"seed": 1, "version": "1"}, {"acc": 90.0}, 11.0)
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "here"))
    assert main(["runs", "export", str(tmp_path / "runs.jsonl.gz"), "--kind", "unit"]) == 0
    assert "wrote 2 stored training runs" in capsys.readouterr().out
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "there"))
    assert main(["runs", "import", str(tmp_path / "runs.jsonl.gz")]) == 0
    there = RunStore(tmp_path / "there" / "runs.sqlite")
    record = there.get_run("unit", {"seed": 0, "version": "1"})
    assert record["acc"] == 91.5 and math.isnan(record["alpha"][0][1]) and len(there.runs("unit")) == 2
    capsys.readouterr()
    assert main(["runs", "import", str(tmp_path / "runs.jsonl.gz")]) == 0
    assert "added 0 training runs" in capsys.readouterr().out
    assert main(["runs", "import", "--replace", str(tmp_path / "runs.jsonl.gz")]) == 0
    assert "added 2 training runs" in capsys.readouterr().out
    (tmp_path / "bad.jsonl").write_text('{"kind": "unit"}\nnot json\n')
    for argv, message in ([["runs", "import", str(tmp_path / "bad.jsonl")], "is not a training-runs file"],
                          [["runs", "export", str(tmp_path / "runs.txt")], "neither scores nor training runs"],
                          [["runs", "export", str(tmp_path / "x.jsonl"), "--estimator", "synflow"], "--estimator"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_a_damaged_compressed_runs_file_is_one_line(tmp_path, monkeypatch, capsys):
    import gzip

    from harness.cli import main

    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    good = gzip.compress(b'{"kind": "unit", "key_json": "{}", "result_json": "{}", "schema": 1, "version": "1",'
                         b' "seconds": 1.0, "host": "h", "created": 0.0}\n' * 50)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.jsonl.gz").write_bytes(bytes(flipped))
    (tmp_path / "typed.jsonl").write_text('{"kind": "unit", "key_json": {"a": 1}, "result_json": "{}", "schema": 1, '
                                          '"version": "1", "seconds": 1.0, "host": "h", "created": 0.0}\n')
    for name in ("flipped.jsonl.gz", "typed.jsonl"):
        assert main(["runs", "import", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "is not a training-runs file" in err and len(err.strip().splitlines()) == 1
