"""Image sets in their real formats: CIFAR-10/100 (python pickles, as torchvision downloads them),
NB201's ImageNet16-120 pickles, and in-memory arrays (``.npz``).

Every loader returns an :class:`ImageSet` with uint8 RGB images ``N x H x W x 3`` and int64
labels. ``official_order`` says whether row i is image i of the official file, which NB201's
split files (``cifar-split.txt`` ...) index into.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import data_root, harness_home
from ..errors import PICKLE_ERRORS, DataMissingError, HarnessError, reason

log = logging.getLogger(__name__)

DATASETS = ("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120")
CIFAR_ARCHIVES = {  # name -> (folder inside the tarball, URL, md5 of the tarball)
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "eb9058c3a382ffc7106e4002c42a8d85"),
}


@dataclass
class ImageSet:
    """Images (uint8, N x H x W x 3, RGB) and labels (int64) of one dataset split."""

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    name: str
    split: str
    official_order: bool  # row i is image i of the official file
    source: str = ""

    def __post_init__(self):
        if self.x.ndim != 4 or self.x.shape[-1] != 3 or self.x.dtype != np.uint8:
            raise HarnessError(f"{self.name} images have shape {self.x.shape} and dtype {self.x.dtype}",
                               "images must be uint8 N x H x W x 3 (RGB)")
        if len(self.x) != len(self.y):
            raise HarnessError(f"{self.name}: {len(self.x)} images but {len(self.y)} labels", "check the source")
        self.y = np.asarray(self.y, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices, split: str | None = None) -> "ImageSet":
        indices = np.asarray(indices)
        return ImageSet(self.x[indices], self.y[indices], self.classes, self.name, split or self.split,
                        False, self.source)


def _damaged(path: Path, what: str, err: BaseException | str, fix: str) -> HarnessError:
    why = err if isinstance(err, str) else reason(err)
    return HarnessError(f"{path} is not a readable {what} ({why})", fix)


def _unpickle(path: Path, what: str = "image pickle", fix: str = "download the images again") -> dict:
    try:
        with open(path, "rb") as handle:
            raw = pickle.load(handle, encoding="bytes")
    except OSError as err:
        raise HarnessError(f"cannot read {path} ({err.strerror or err})", fix) from err
    except PICKLE_ERRORS as err:
        raise _damaged(path, what, err, fix) from err
    if not isinstance(raw, dict):
        raise _damaged(path, what, f"it holds a {type(raw).__name__}, not a dict", fix)
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}


def _field(batch: dict, key: str, path: Path, what: str, fix: str):
    if key not in batch:
        raise _damaged(path, what, f"it has no {key!r} entry", fix)
    return batch[key]


def _chw_rows_to_hwc(data, size: int, path: Path | None = None, what: str = "image pickle",
                     fix: str = "download the images again") -> np.ndarray:
    """Rows of 3*size*size bytes (all R, then G, then B) -> N x size x size x 3."""
    try:
        rows = np.asarray(data, dtype=np.uint8)
    except (ValueError, TypeError, OverflowError) as err:
        raise _damaged(Path(path or "?"), what, err, fix) from err
    if rows.ndim != 2 or rows.shape[1] != 3 * size * size:
        raise _damaged(Path(path or "?"), what, f"its data has shape {rows.shape}, not N x {3 * size * size}", fix)
    return np.ascontiguousarray(rows.reshape(-1, 3, size, size).transpose(0, 2, 3, 1))


def _labels(values, n: int, path: Path, what: str, fix: str) -> np.ndarray:
    """Labels as int64, one per image, each >= 0 (a one-line error otherwise)."""
    try:
        y = np.asarray(values)
        if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or (y.size == 0 and y.dtype == float)):
            raise ValueError(f"labels of shape {y.shape} and dtype {y.dtype}, not one integer per image")
    except (ValueError, TypeError) as err:
        raise _damaged(path, what, str(err), fix) from err
    if len(y) != n:
        raise _damaged(path, what, f"{n} images but {len(y)} labels", fix)
    if len(y) and y.min() < 0:
        raise _damaged(path, what, f"label {int(y.min())} is negative", fix)
    return y.astype(np.int64)


def load_npz(path: Path, name: str = "cifar10", split: str = "train") -> ImageSet:
    """Arrays saved with keys ``x`` (N x H x W x 3 uint8), ``y`` and optionally ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"image file {path} not found", "pass an existing .npz or set HARNESS_DATA")
    fix = "write it again with np.savez(path, x=images, y=labels, classes=names) (x: N x H x W x 3 uint8)"
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError as err:
        raise HarnessError(f"cannot read {path} ({err.strerror})", "check the file and its permissions") from err
    if not magic:
        raise _damaged(path, "image .npz", "it is empty", fix)
    if magic.startswith(b"\x93NUMPY"):
        raise _damaged(path, "image .npz", "it is a single .npy array, not an .npz archive", fix)
    if not magic.startswith(b"PK"):
        raise _damaged(path, "image .npz", "it is not an .npz archive: it does not start as a zip file does", fix)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data or "y" not in data:
                raise HarnessError(f"{path} lacks the arrays x and y", "save images as x (N x H x W x 3 uint8) and y")
            x, y = data["x"], data["y"]  # read (and CRC-checked) here: a truncated member fails now
            classes = data["classes"] if "classes" in data else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, OSError) and err.errno is not None:  # the disk or the permissions, not the format
            raise HarnessError(f"cannot read {path} ({err.strerror})", "check the file and its permissions") from err
        raise _damaged(path, "image .npz", err, fix) from err
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8 or len(x) == 0:
        raise _damaged(path, "image .npz", f"x has shape {x.shape} and dtype {x.dtype}, not N x H x W x 3 uint8 "
                       "with N >= 1", fix)
    y = _labels(y, len(x), path, "image .npz", fix)
    if classes is None:
        classes = tuple(str(i) for i in range(int(y.max()) + 1))
    else:
        classes = tuple(str(c) for c in np.atleast_1d(classes))
        if int(y.max()) >= len(classes):
            raise _damaged(path, "image .npz", f"label {int(y.max())} but only {len(classes)} classes", fix)
    return ImageSet(x, y, classes, name, split, False, str(path))


def load_cifar_python(root: Path, name: str, train: bool) -> ImageSet:
    """CIFAR-10/100 in the official python layout (``root/cifar-10-batches-py`` or ``root`` itself)."""
    folder_name = CIFAR_ARCHIVES[name][0]
    root = Path(root)
    folder = root if root.name == folder_name else root / folder_name
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        meta_file, label_key, names_key = "batches.meta", "labels", "label_names"
    else:
        files = ["train" if train else "test"]
        meta_file, label_key, names_key = "meta", "fine_labels", "fine_label_names"
    missing = [f for f in files + [meta_file] if not (folder / f).is_file()]
    if missing:
        raise DataMissingError(f"{name} files {', '.join(missing)} not found in {folder}",
                               f"download {CIFAR_ARCHIVES[name][1].rsplit('/', 1)[-1]} and extract it there "
                               "(or pass download=True)")
    archive = CIFAR_ARCHIVES[name][1].rsplit("/", 1)[-1]
    what, fix = f"{name} batch file", f"download {archive} again and extract it into {folder.parent}"
    xs, ys = [], []
    for f in files:
        batch = _unpickle(folder / f, what, fix)
        xs.append(_chw_rows_to_hwc(_field(batch, "data", folder / f, what, fix), 32, folder / f, what, fix))
        ys.append(_labels(_field(batch, label_key, folder / f, what, fix), len(xs[-1]), folder / f, what, fix))
    meta = _unpickle(folder / meta_file, f"{name} meta file", fix)
    try:
        classes = tuple(c.decode() if isinstance(c, bytes) else str(c)
                        for c in _field(meta, names_key, folder / meta_file, f"{name} meta file", fix))
    except (TypeError, UnicodeDecodeError) as err:
        raise _damaged(folder / meta_file, f"{name} meta file", err, fix) from err
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(y) and int(y.max()) >= len(classes):
        raise _damaged(folder, f"{name} folder", f"label {int(y.max())} but {len(classes)} class names", fix)
    return ImageSet(x, y, classes, name, "train" if train else "test", True, str(folder))


def download_cifar(name: str, root: Path, timeout: float = 60.0) -> Path:
    """Download and extract the official CIFAR tarball into ``root`` (md5 checked)."""
    folder_name, url, md5 = CIFAR_ARCHIVES[name]
    root = Path(root)
    if (root / folder_name).is_dir():
        return root / folder_name
    root.mkdir(parents=True, exist_ok=True)
    archive = root / url.rsplit("/", 1)[-1]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except (urllib.error.URLError, OSError) as err:
        archive.unlink(missing_ok=True)
        raise DataMissingError(f"cannot download {name} from {url} ({err})",
                               f"download it elsewhere and extract it into {root}") from err
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    if digest != md5:
        archive.unlink()
        raise HarnessError(f"{archive.name} has md5 {digest}, expected {md5}", "download it again")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    archive.unlink()
    return root / folder_name


def load_imagenet16(root: Path, train: bool, num_classes: int = 120) -> ImageSet:
    """NB201's ImageNet16 pickles (``train_data_batch_1..10``, ``val_data``): 16x16 images,
    1-based ImageNet labels; ImageNet16-120 keeps labels 1..120 and shifts them to 0..119."""
    root = Path(root)
    files = [f"train_data_batch_{i}" for i in range(1, 11)] if train else ["val_data"]
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        raise DataMissingError(f"ImageNet16 files {', '.join(missing[:3])} not found in {root}",
                               "get NB201's ImageNet16 (Downsampled ImageNet 16x16) pickles and pass their folder")
    xs, ys = [], []
    what, fix = "ImageNet16 pickle", "get NB201's ImageNet16 pickles again"
    for f in files:
        batch = _unpickle(root / f, what, fix)
        data = _chw_rows_to_hwc(_field(batch, "data", root / f, what, fix), 16, root / f, what, fix)
        labels = _labels(_field(batch, "labels", root / f, what, fix), len(data), root / f, what, fix)
        keep = (labels >= 1) & (labels <= num_classes)
        xs.append(data[keep])
        ys.append(labels[keep] - 1)
    name = f"ImageNet16-{num_classes}"
    return ImageSet(np.concatenate(xs), np.concatenate(ys), tuple(str(i) for i in range(num_classes)), name,
                    "train" if train else "test", num_classes == 1000, str(root))


def load_images(dataset: str, split: str, source: str | Path | None = None, download: bool = False) -> ImageSet:
    """One entry point: ``dataset`` in cifar10, cifar10-valid, cifar100, ImageNet16-120; ``split``
    train or test (cifar10-valid: train or valid, NB201's 25k/25k halves of CIFAR-10 train).

    ``source``: an ``.npz`` file, a folder in torchvision's CIFAR layout, or NB201's ImageNet16
    folder. None: ``HARNESS_DATA/images`` (the official CIFAR layout when present there, else
    ``cifar10_{train,test}.npz``), then ``HARNESS_HOME/images`` (where ``download`` puts it).
    """
    if dataset not in DATASETS:
        raise HarnessError(f"unknown image dataset {dataset!r}", f"use one of {', '.join(DATASETS)}")
    valid_splits = ("train", "valid") if dataset == "cifar10-valid" else ("train", "test")
    if split not in valid_splits:
        raise HarnessError(f"{dataset} has no image split {split!r}", f"use {' or '.join(valid_splits)}")
    if dataset == "cifar10-valid":
        full = load_images("cifar10", "train", source, download)
        train_idx, valid_idx = cifar10_valid_split(full)
        part = full.subset(train_idx if split == "train" else valid_idx, split)
        part.name = "cifar10-valid"
        return part
    train = split == "train"
    if dataset == "ImageNet16-120":
        folder = Path(source) if source else (data_root() or harness_home()) / "images" / "ImageNet16"
        return load_imagenet16(folder, train, 120)
    if source is not None:
        path = Path(source)
        return load_npz(path, dataset, split) if path.suffix == ".npz" else load_cifar_python(path, dataset, train)
    folder_name = CIFAR_ARCHIVES[dataset][0]
    roots = [r / "images" for r in (data_root(), harness_home()) if r is not None]
    for root in roots:
        if (root / folder_name).is_dir():
            return load_cifar_python(root, dataset, train)
    npz = roots[0] / f"{dataset}_{split}.npz" if roots else None
    if npz is not None and npz.is_file():
        return load_npz(npz, dataset, split)
    if download:
        return load_cifar_python(download_cifar(dataset, harness_home() / "images"), dataset, train)
    raise DataMissingError(f"no {dataset} images found (looked in {', '.join(map(str, roots))})",
                           f"set HARNESS_DATA to a folder with images/{dataset}_{split}.npz or images/{folder_name}, "
                           "pass source=..., or download=True when online")


# -- NB201's split files --------------------------------------------------------------------
def load_split_file(path: Path) -> dict[str, np.ndarray]:
    """NB201's split files (``cifar-split.txt``, ...): ``{"train": ["int", ["0", "5", ...]], ...}``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
        return {key: np.array([int(v) for v in values[1]], dtype=np.int64) for key, values in raw.items()}
    except (OSError, ValueError, TypeError, IndexError) as err:
        raise HarnessError(f"{path} is not an NB201 split file ({err})",
                           'expected {"train": ["int", [indices...]], "valid": ["int", [...]]}') from err


def _nb201_split_file() -> Path | None:
    """``HARNESS_DATA/nb201/cifar-split.txt`` when it is there, else None."""
    root = data_root()
    if root is not None and (root / "nb201" / "cifar-split.txt").is_file():
        return root / "nb201" / "cifar-split.txt"
    return None


def cifar10_valid_protocol(path: Path | None = None, seed: int = 0) -> str:
    """Which halves :func:`cifar10_valid_split` gives with these arguments, in words that key
    results: NB201's split file, or the seeded class-stratified fallback."""
    if path is not None or _nb201_split_file() is not None:
        return "cifar10-valid: NB201's cifar-split.txt"
    return f"cifar10-valid: seeded (seed {seed}) class-stratified halves"


def cifar10_valid_split(images: ImageSet, path: Path | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, valid) indices of NB201's ``cifar10-valid`` protocol over CIFAR-10's training set.

    NB201 uses the fixed split in ``cifar-split.txt`` (indices into the official file order):
    read from ``path`` or ``HARNESS_DATA/nb201/cifar-split.txt``. The harness does not ship that
    file; without it, or for images not in the official order, this returns a seeded
    class-stratified 25k/25k split and logs that it is *not* NB201's exact split.
    """
    path = path if path is not None else _nb201_split_file()
    if path is not None:
        if not images.official_order:
            raise HarnessError(f"{images.source} is not in the official CIFAR-10 order, so {path} cannot index it",
                               "load CIFAR-10 from its official python files (cifar-10-batches-py)")
        split = load_split_file(path)
        if len(split.get("train", [])) + len(split.get("valid", [])) != len(images):
            raise HarnessError(f"{path} does not cover the {len(images)} training images", "use NB201's cifar-split.txt")
        return split["train"], split["valid"]
    log.warning("cifar10-valid: NB201's cifar-split.txt is not available; using a seeded (seed %d) class-stratified "
                "25k/25k split instead, which is not NB201's exact split", seed)
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c in np.unique(images.y):
        members = rng.permutation(np.flatnonzero(images.y == c))
        half = len(members) // 2
        train.append(members[:half])
        valid.append(members[half:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))
