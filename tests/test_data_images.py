"""Image loaders on the real CIFAR-10 arrays and on small files written in each real format."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from harness.data import (ImageSet, cifar10_valid_split, load_cifar_python, load_imagenet16, load_images,
                          load_split_file, random_crop_flip, sample_balanced, sample_batch, to_tensor_batch)
from harness.errors import DataMissingError, HarnessError



@pytest.fixture(scope="module")
def cifar10_train(full_data):
    return load_images("cifar10", "train")


def test_real_cifar10_arrays(cifar10_train):
    assert cifar10_train.x.shape == (50000, 32, 32, 3) and cifar10_train.x.dtype == np.uint8
    assert np.bincount(cifar10_train.y).tolist() == [5000] * 10
    assert cifar10_train.classes[0] == "airplane" and not cifar10_train.official_order
    test = load_images("cifar10", "test")
    assert len(test) == 10000 and np.bincount(test.y).tolist() == [1000] * 10


def test_normalised_real_images_have_zero_mean_unit_std(cifar10_train):
    x, y = to_tensor_batch(cifar10_train, np.arange(0, 50000, 5))
    assert x.shape == (10000, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    mean, std = x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3))
    assert mean.abs().max() < 0.02, mean
    assert (std - 1).abs().max() < 0.05, std


def _random_images(rng, n, size):
    return rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _rows(x):  # N x H x W x 3 -> N x 3*H*W, channel-first, as the official pickles store them
    return x.transpose(0, 3, 1, 2).reshape(len(x), -1)


def test_cifar10_python_layout(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [(_random_images(rng, 4, 32), rng.integers(0, 10, 4)) for _ in range(5)]
    for i, (x, y) in enumerate(batches, start=1):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": _rows(x), b"labels": y.tolist(), b"batch_label": b"x"}, f)
    test_x, test_y = _random_images(rng, 3, 32), rng.integers(0, 10, 3)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _rows(test_x), b"labels": test_y.tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    train = load_cifar_python(tmp_path, "cifar10", train=True)
    np.testing.assert_array_equal(train.x, np.concatenate([b[0] for b in batches]))
    np.testing.assert_array_equal(train.y, np.concatenate([b[1] for b in batches]))
    assert train.official_order and train.classes[3] == "c3"
    test = load_images("cifar10", "test", source=tmp_path)
    np.testing.assert_array_equal(test.x, test_x)


def test_cifar100_python_layout(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x, y = _random_images(rng, 6, 32), rng.integers(0, 100, 6)
    for name in ("train", "test"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": _rows(x), b"fine_labels": y.tolist(), b"coarse_labels": [0] * 6}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, f)
    got = load_images("cifar100", "train", source=folder)
    np.testing.assert_array_equal(got.x, x)
    np.testing.assert_array_equal(got.y, y)
    assert got.num_classes == 100


def test_imagenet16_pickle_format(tmp_path):
    rng = np.random.default_rng(2)
    kept_x, kept_y = [], []
    for i in range(1, 11):
        x = _random_images(rng, 5, 16)
        labels = np.array([1, 120, 121, 500, 7])  # 1-based ImageNet ids; 121 and 500 are not in the 120 subset
        with open(tmp_path / f"train_data_batch_{i}", "wb") as f:
            pickle.dump({"data": _rows(x), "labels": labels.tolist(), "mean": np.zeros(3072)}, f)
        kept_x.append(x[[0, 1, 4]])
        kept_y.append(labels[[0, 1, 4]] - 1)
    with open(tmp_path / "val_data", "wb") as f:
        pickle.dump({"data": _rows(kept_x[0]), "labels": [2, 3, 4]}, f)
    train = load_imagenet16(tmp_path, train=True)
    np.testing.assert_array_equal(train.x, np.concatenate(kept_x))
    np.testing.assert_array_equal(train.y, np.concatenate(kept_y))
    assert train.num_classes == 120 and train.x.shape[1:] == (16, 16, 3)
    x, _ = to_tensor_batch(load_images("ImageNet16-120", "test", source=tmp_path), [0, 1, 2], augment=True,
                           generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 16, 16)


def test_missing_files_give_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(DataMissingError, match="data_batch_1.*not found") as info:
        load_cifar_python(tmp_path, "cifar10", train=True)
    assert "\n" not in str(info.value)
    with pytest.raises(DataMissingError, match="val_data"):
        load_imagenet16(tmp_path, train=False)
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match="no cifar100 images found"):
        load_images("cifar100", "train")
    with pytest.raises(HarnessError, match="no image split 'valid'"):
        load_images("cifar10", "valid")
    with pytest.raises(HarnessError, match="unknown image dataset"):
        load_images("mnist", "train")


def test_augmentation_is_seeded_and_exact():
    x = torch.rand(8, 3, 32, 32)
    a = random_crop_flip(x, 4, torch.Generator().manual_seed(5))
    b = random_crop_flip(x, 4, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    assert a.shape == x.shape and not torch.equal(a, random_crop_flip(x, 4, torch.Generator().manual_seed(6)))
    # without padding, each image is itself or its mirror
    c = random_crop_flip(x, 0, torch.Generator().manual_seed(1))
    for i in range(8):
        assert torch.equal(c[i], x[i]) or torch.equal(c[i], x[i].flip(-1))
    # with padding, each output is a window of the zero-padded image (possibly mirrored)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(8):
        windows = [padded[i, :, r:r + 32, s:s + 32] for r in range(9) for s in range(9)]
        assert any(torch.equal(a[i], w) or torch.equal(a[i], w.flip(-1)) for w in windows)


def test_samplers():
    y = np.repeat(np.arange(10), 100)
    a = sample_batch(y, 64, seed=3)
    np.testing.assert_array_equal(a, sample_batch(y, 64, seed=3))
    assert len(set(a)) == 64
    b = sample_balanced(y, 64, seed=3)
    np.testing.assert_array_equal(b, sample_balanced(y, 64, seed=3))
    counts = np.bincount(y[b], minlength=10)
    assert len(set(b)) == 64 and sorted(counts.tolist()) == [6] * 6 + [7] * 4
    with pytest.raises(HarnessError, match="does not fit"):
        sample_batch(y, 5000, seed=0)


def test_nb201_split_file_format(tmp_path):
    path = tmp_path / "cifar-split.txt"
    path.write_text(json.dumps({"train": ["int", ["0", "2", "3"]], "valid": ["int", ["1", "4", "5"]]}))
    split = load_split_file(path)
    assert split["train"].tolist() == [0, 2, 3] and split["valid"].tolist() == [1, 4, 5]
    official = ImageSet(np.zeros((6, 32, 32, 3), np.uint8), np.arange(6) % 2, ("a", "b"), "cifar10", "train", True)
    train, valid = cifar10_valid_split(official, path)
    assert train.tolist() == [0, 2, 3]
    unordered = ImageSet(official.x, official.y, official.classes, "cifar10", "train", False)
    with pytest.raises(HarnessError, match="not in the official CIFAR-10 order"):
        cifar10_valid_split(unordered, path)
    (tmp_path / "bad.txt").write_text("not json")
    with pytest.raises(HarnessError, match="not an NB201 split file"):
        load_split_file(tmp_path / "bad.txt")


def test_cifar10_valid_fallback_split_is_stratified(cifar10_train, caplog):
    train, valid = cifar10_valid_split(cifar10_train, seed=0)
    assert "not NB201's exact split" in caplog.text
    assert len(train) == len(valid) == 25000 and not set(train) & set(valid)
    assert np.bincount(cifar10_train.y[valid]).tolist() == [2500] * 10
    part = load_images("cifar10-valid", "valid")
    assert len(part) == 25000 and part.name == "cifar10-valid"


@pytest.mark.parametrize("dataset, mean, std", [
    ("cifar10", (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    ("cifar10-valid", (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    ("cifar100", (129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),  # a prefix match once gave it CIFAR-10's
    ("ImageNet16-120", (122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
])
def test_each_dataset_is_normalised_with_its_own_statistics(dataset, mean, std):
    """NB201's per-dataset mean and std (0..255 units in its code)."""
    from harness.data.transforms import stats_for

    got_mean, got_std = stats_for(dataset)
    torch.testing.assert_close(got_mean * 255, torch.tensor(mean))
    torch.testing.assert_close(got_std * 255, torch.tensor(std))


def test_cifar100_images_are_normalised_with_cifar100_statistics():
    """On the 20 lossless CIFAR-100 test images (tests/fixtures): (x - mean) / std with CIFAR-100's values."""
    from harness.data.images import ImageSet

    from .conftest import FIXTURES, _png_arrays

    x8, y = _png_arrays(FIXTURES / "images" / "foolbox", "cifar100")
    images = ImageSet(x8, y, tuple(str(i) for i in range(100)), "cifar100", "test", False, "foolbox")
    x, _ = to_tensor_batch(images, np.arange(len(images)))
    raw = torch.from_numpy(images.x).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor((129.3, 124.1, 112.4))[None, :, None, None] / 255
    std = torch.tensor((68.2, 65.4, 70.4))[None, :, None, None] / 255
    torch.testing.assert_close(x, (raw - mean) / std)
    with pytest.raises(HarnessError, match="no normalisation for dataset 'cifar1000'"):
        from harness.data.transforms import stats_for

        stats_for("cifar1000")


def test_augmentation_draws_where_its_generator_lives():
    """The offsets and flips come from the generator's device (on CUDA: no copy per step); on the
    CPU they are the draws of the plain calls, so CPU results did not move."""
    import torch

    from harness.data import random_crop_flip

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = random_crop_flip(x, 2, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    oy, ox = torch.randint(0, 5, (2,), generator=g), torch.randint(0, 5, (2,), generator=g)
    flip = torch.rand(2, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        crop = padded[i, :, oy[i]:oy[i] + 8, ox[i]:ox[i] + 8]
        assert torch.equal(out[i], crop.flip(-1) if flip[i] else crop)
    if torch.cuda.is_available():
        gpu = random_crop_flip(x.cuda(), 2, torch.Generator(device="cuda").manual_seed(5))
        assert gpu.device.type == "cuda" and gpu.shape == x.shape
