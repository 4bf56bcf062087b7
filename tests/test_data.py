"""Tests of semfed.data: local formats, cache, tfds fallback, synthetic data, CIFAR-10."""

from __future__ import annotations

import os
import pickle
import socket
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semfed.config import DataConfig
from semfed.data import DataError, ImageDataset, load_dataset, make_synthetic, tfds_source
from semfed.data.dataset import check_dataset
from semfed.data.sources import CIFAR10_CLASSES

CIFAR10_NAMES = CIFAR10_CLASSES
PER_BATCH = 20


# --------------------------------------------------------------------------- fixtures


def _config(tmp_path: Path, path: Path | str | None, **kwargs: object) -> DataConfig:
    # Every test gets its own cache folder so no test reads another's (or the user's).
    return DataConfig(
        path=None if path is None else str(path), cache_dir=str(tmp_path / "cache"), **kwargs
    )


def _cache_files(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "cache"
    return sorted(folder.iterdir()) if folder.exists() else []


def _write_cifar10_folder(folder: Path, seed: int = 0, per_batch: int = PER_BATCH) -> dict:
    """The official layout with tiny batches; returns the expected arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    expected: dict[str, list] = {"train": [], "test": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        expected["test" if name == "test_batch" else "train"].append((data, labels))
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [n.encode() for n in CIFAR10_NAMES],
        b"num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    out = {}
    for split, parts in expected.items():
        data = np.concatenate([d for d, _ in parts])
        out[f"raw_{split}"] = data
        out[f"x_{split}"] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        out[f"y_{split}"] = np.array([lab for _, labs in parts for lab in labs])
    return out


def _tar(source: Path, archive: Path, arcname: str, mode: str = "w:gz") -> Path:
    """Archive ``source`` as ``arcname``, files in reverse name order.

    tarfile.add would store them sorted; reversing checks that the reader sorts
    by itself instead of trusting the member order.
    """
    with tarfile.open(archive, mode) as tar:
        for file in sorted(source.rglob("*"), reverse=True):
            if file.is_file():
                tar.add(file, arcname=str(Path(arcname) / file.relative_to(source)))
    return archive


TREE_CLASSES = ("cat", "ant", "bee")  # sorted order: ant, bee, cat


def _write_tree(
    root: Path, seed: int = 0, size: int = 8, classes: tuple[str, ...] = TREE_CLASSES
) -> dict[tuple[str, str, str], np.ndarray]:
    """train/ and test/ with PNGs (RGB, grey, RGBA) and one JPEG per class.

    Returns {(split, class, file): RGB uint8 array as written}.
    """
    rng = np.random.default_rng(seed)
    written = {}
    for split, count in (("train", 3), ("test", 2)):
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                mode = ("RGB", "L", "RGBA")[i % 3]
                if mode == "L":
                    grey = rgb[..., 0]
                    Image.fromarray(grey, "L").save(folder / f"{i:03d}.png")
                    rgb = np.repeat(grey[..., None], 3, axis=2)
                elif mode == "RGBA":
                    alpha = np.full((size, size, 1), 255, np.uint8)
                    Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA").save(
                        folder / f"{i:03d}.png"
                    )
                else:
                    Image.fromarray(rgb, "RGB").save(folder / f"{i:03d}.png")
                written[(split, cls, f"{i:03d}.png")] = rgb
            smooth = np.full((size, size, 3), (20 * (1 + classes.index(cls)), 128, 200), np.uint8)
            Image.fromarray(smooth).save(folder / "zz.jpg", quality=95)
            written[(split, cls, "zz.jpg")] = smooth
    (root / "README.txt").write_text("not an image, ignored\n")
    return written


def _check_tree(ds: ImageDataset, written: dict) -> None:
    assert ds.class_names == ("ant", "bee", "cat")
    for split in ("train", "test"):
        keys = sorted(
            (k for k in written if k[0] == split),
            key=lambda k: (sorted(TREE_CLASSES).index(k[1]), k[2]),
        )
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert x.shape == (len(keys), 8, 8, 3)
        assert y.tolist() == [ds.class_names.index(k[1]) for k in keys]
        for image, key in zip(x, keys, strict=True):
            if key[2].endswith(".png"):
                np.testing.assert_array_equal(image, written[key])  # lossless
            else:
                assert np.abs(image.astype(int) - written[key]).max() <= 8  # JPEG


# --------------------------------------------------------------------------- official CIFAR


def test_official_cifar10_archive(tmp_path: Path) -> None:
    expected = _write_cifar10_folder(tmp_path / "src" / "cifar-10-batches-py")
    archive = _tar(
        tmp_path / "src" / "cifar-10-batches-py",
        tmp_path / "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
    )

    ds = load_dataset(_config(tmp_path, archive), progress=False)

    assert ds.name == "cifar10"
    assert ds.source == str(archive.resolve())
    assert ds.class_names == CIFAR10_NAMES and ds.num_classes == 10
    assert ds.x_train.shape == (5 * PER_BATCH, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (PER_BATCH, 32, 32, 3) and ds.y_test.dtype == np.int64
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, key), expected[key])
    # Independently of the fixture's reshape: a row holds the red, green and blue
    # 32x32 planes one after the other, each row-major.
    raw = expected["raw_train"][7]
    for row, col in ((0, 1), (5, 30), (31, 2)):
        for channel in range(3):
            assert ds.x_train[7, row, col, channel] == raw[1024 * channel + 32 * row + col]


@pytest.mark.parametrize("level", ["batches folder", "parent folder"])
def test_official_cifar10_folder(tmp_path: Path, level: str) -> None:
    folder = tmp_path / "data" / "cifar-10-batches-py"
    expected = _write_cifar10_folder(folder)
    path = folder if level == "batches folder" else folder.parent

    ds = load_dataset(_config(tmp_path, path), progress=False)

    assert ds.name == "cifar10" and ds.class_names == CIFAR10_NAMES
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(ds, key), expected[key])


def test_official_cifar100_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    data = {
        s: rng.integers(0, 256, (n, 3072), dtype=np.uint8) for s, n in (("train", 30), ("test", 10))
    }
    for split, x in data.items():
        labels = [int(v) for v in rng.integers(0, 100, len(x))]
        batch = {b"data": x, b"fine_labels": labels, b"coarse_labels": [0] * len(x)}
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
    names = [f"c{i:02d}".encode() for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": names}, protocol=2))

    ds = load_dataset(_config(tmp_path, folder, name="cifar100"), progress=False)

    assert ds.name == "cifar100" and ds.num_classes == 100 and ds.x_train.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(ds.x_test[3].transpose(2, 0, 1).reshape(-1), data["test"][3])
    with pytest.raises(DataError, match=r"data\.name = 'cifar100'"):
        load_dataset(_config(tmp_path, folder, name="cifar10"), progress=False)


def test_official_archive_refuses_foreign_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10_folder(folder)
    # A pickle that would call os.getcwd() when loaded: must be refused, not run.
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd}, protocol=2))
    with pytest.raises(DataError, match=r"test_batch.*posix\.getcwd|getcwd"):
        load_dataset(_config(tmp_path, folder), progress=False)
    assert _cache_files(tmp_path) == []


def test_invalid_labels_are_refused_and_not_cached(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10_folder(folder)
    batch = pickle.loads((folder / "test_batch").read_bytes(), encoding="bytes")
    batch[b"labels"][5] = 10  # CIFAR-10 labels are 0..9
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match=r"test labels span \[\d, 10\], outside \[0, 10\)"):
        load_dataset(_config(tmp_path, folder), progress=False)
    assert _cache_files(tmp_path) == []


def test_incomplete_official_archive(tmp_path: Path) -> None:
    folder = tmp_path / "src" / "cifar-10-batches-py"
    _write_cifar10_folder(folder)
    (folder / "data_batch_3").unlink()
    archive = _tar(folder, tmp_path / "cifar.tar.gz", "cifar-10-batches-py")
    with pytest.raises(DataError, match="missing data_batch_3"):
        load_dataset(_config(tmp_path, archive), progress=False)


# --------------------------------------------------------------------------- class-folder trees


@pytest.mark.parametrize("nested", [False, True])
def test_tree_folder(tmp_path: Path, nested: bool) -> None:
    root = tmp_path / "data" / ("cifar_like" if nested else "")
    written = _write_tree(root)

    ds = load_dataset(_config(tmp_path, tmp_path / "data", name="my_images"), progress=False)

    assert ds.name == "my_images"
    _check_tree(ds, written)


@pytest.mark.parametrize(
    ("suffix", "mode", "top"), [(".tar.gz", "w:gz", "top"), (".tar", "w", ""), (".tgz", "w:gz", "")]
)
def test_tree_archive(tmp_path: Path, suffix: str, mode: str, top: str) -> None:
    written = _write_tree(tmp_path / "tree")
    archive = _tar(tmp_path / "tree", tmp_path / f"images{suffix}", top or ".", mode)

    ds = load_dataset(_config(tmp_path, archive), progress=False)

    assert ds.source == str(archive.resolve())
    _check_tree(ds, written)


def test_tree_archive_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_tree(tmp_path / "tree")
    archive = _tar(tmp_path / "tree", tmp_path / "images.tar.gz", "tree")
    load_dataset(_config(tmp_path, archive), progress=True)
    captured = capsys.readouterr()
    assert "images.tar.gz" in captured.err and captured.out == ""


def test_cifar10_tree_refuses_another_data_name(tmp_path: Path, monkeypatch, capsys) -> None:
    """A tree of CIFAR-10's classes (like the shared JPEG copy) is CIFAR-10: another
    data.name is refused with one line, not silently replaced by CIFAR-10."""
    from semfed.cli import main

    _write_tree(tmp_path / "tree", classes=CIFAR10_NAMES)
    archive = _tar(tmp_path / "tree", tmp_path / "cifar10_jpeg.tar.gz", "cifar10")
    assert load_dataset(_config(tmp_path, archive), progress=False).name == "cifar10"
    for name in ("nosuchset", "cifar100", "mnist"):
        with pytest.raises(
            DataError, match=rf"class-folder tree of cifar10, but data\.name is '{name}'"
        ):
            load_dataset(_config(tmp_path, archive, name=name), progress=False)
    # The same through the command line, with the copy given by SEMFED_DATA.
    monkeypatch.setenv("SEMFED_DATA", str(archive))
    monkeypatch.setenv("SEMFED_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "c.toml"
    config.write_text('[data]\nname = "nosuchset"\n[partition]\nnum_clients = 1\nways = 2\n')
    assert main(["partition", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "data.name is 'nosuchset'" in err and "cifar10_jpeg.tar.gz" in err


def test_own_tree_takes_its_name_from_data_name(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")  # ant, bee, cat: not a CIFAR copy
    assert (
        load_dataset(_config(tmp_path, tmp_path / "tree", name="insects"), progress=False).name
        == "insects"
    )


def test_tree_with_mixed_sizes_names_the_odd_file(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    Image.new("RGB", (9, 8)).save(tmp_path / "tree" / "test" / "bee" / "odd.png")
    with pytest.raises(DataError, match=r"test/bee/odd\.png is 9x8 pixels.*8x8"):
        load_dataset(_config(tmp_path, tmp_path / "tree"), progress=False)


def test_tree_with_undecodable_image(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    (tmp_path / "tree" / "train" / "ant" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken\.png: cannot decode"):
        load_dataset(_config(tmp_path, tmp_path / "tree"), progress=False)


def test_tree_with_test_class_missing_from_train(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    (tmp_path / "tree" / "test" / "zebra").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "tree" / "test" / "zebra" / "0.png")
    with pytest.raises(DataError, match="zebra"):
        load_dataset(_config(tmp_path, tmp_path / "tree"), progress=False)


@pytest.mark.parametrize("kind", ["text file", "folder without splits", "tar without images"])
def test_unsupported_path_lists_accepted_formats(tmp_path: Path, kind: str) -> None:
    if kind == "text file":
        path = tmp_path / "notes.txt"
        path.write_text("hello\n" * 100)
    elif kind == "folder without splits":
        path = tmp_path / "folder"
        (path / "images").mkdir(parents=True)
    else:
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "a.txt").write_text("x")
        path = _tar(tmp_path / "docs", tmp_path / "docs.tar.gz", "docs")
    with pytest.raises(
        DataError, match=r"Accepted data paths:.*cifar-10-python\.tar\.gz.*train/<class>"
    ):
        load_dataset(_config(tmp_path, path), progress=False)


# --------------------------------------------------------------------------- cache


def test_second_load_comes_from_cache(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    archive = _tar(tmp_path / "tree", tmp_path / "images.tar.gz", "tree")
    config = _config(tmp_path, archive)

    first = load_dataset(config, progress=False)
    second = load_dataset(config, progress=False)

    assert not first.source.startswith("cache")
    assert second.source.startswith("cache:") and str(archive.resolve()) in second.source
    assert len(_cache_files(tmp_path)) == 1
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))
        assert getattr(second, key).dtype == getattr(first, key).dtype
    assert second.class_names == first.class_names and second.name == first.name


def test_cache_of_a_folder_source(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    config = _config(tmp_path, tmp_path / "tree")
    load_dataset(config, progress=False)
    assert load_dataset(config, progress=False).source.startswith("cache")
    # A new image changes the folder's fingerprint.
    Image.new("RGB", (8, 8), "red").save(tmp_path / "tree" / "train" / "ant" / "new.png")
    third = load_dataset(config, progress=False)
    assert not third.source.startswith("cache") and len(third.x_train) == 13


def test_cache_rebuilt_when_source_changes(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    _write_cifar10_folder(tmp_path / "a" / "cifar-10-batches-py", seed=0)
    _tar(tmp_path / "a" / "cifar-10-batches-py", archive, "cifar-10-batches-py")
    config = _config(tmp_path, archive)
    load_dataset(config, progress=False)
    assert load_dataset(config, progress=False).source.startswith("cache")

    expected = _write_cifar10_folder(tmp_path / "b" / "cifar-10-batches-py", seed=1, per_batch=7)
    _tar(tmp_path / "b" / "cifar-10-batches-py", archive, "cifar-10-batches-py")
    rebuilt = load_dataset(config, progress=False)

    assert not rebuilt.source.startswith("cache")
    np.testing.assert_array_equal(rebuilt.x_train, expected["x_train"])
    again = load_dataset(config, progress=False)
    assert again.source.startswith("cache") and again.x_train.shape == (35, 32, 32, 3)
    assert len(_cache_files(tmp_path)) == 1  # rebuilt in place, no stale copy left


def test_truncated_archive_raises_and_leaves_no_cache(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree", size=16)
    archive = _tar(tmp_path / "tree", tmp_path / "images.tar.gz", "tree")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])

    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(_config(tmp_path, archive), progress=False)
    assert _cache_files(tmp_path) == []


def test_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    _write_tree(tmp_path / "tree")
    config = _config(tmp_path, tmp_path / "tree")
    good = load_dataset(config, progress=False)
    (cache_file,) = _cache_files(tmp_path)

    for garbage in (b"\x00garbage" * 100, cache_file.read_bytes()[:1000]):
        cache_file.write_bytes(garbage)
        rebuilt = load_dataset(config, progress=False)
        assert not rebuilt.source.startswith("cache")
        np.testing.assert_array_equal(rebuilt.x_train, good.x_train)
        assert load_dataset(config, progress=False).source.startswith("cache")
    assert _cache_files(tmp_path) == [cache_file]  # no temporary files left behind


# --------------------------------------------------------------------------- no source, tfds


def _no_network_tfds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def offline(name: str, **kwargs: object) -> ImageDataset:
        calls.append(name)
        raise ConnectionError("download failed (offline?): cannot resolve www.cs.toronto.edu")

    monkeypatch.setattr(tfds_source, "load_tfds", offline)
    return calls


def test_no_source_lists_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _no_network_tfds(monkeypatch)
    missing = tmp_path / "nowhere" / "cifar-10-python.tar.gz"
    monkeypatch.setenv("SEMFED_DATA", str(missing))

    with pytest.raises(DataError) as info:
        load_dataset(_config(tmp_path, None), progress=False)

    message = str(info.value)
    assert calls == ["cifar10"]
    assert f"path from SEMFED_DATA={missing}: does not exist" in message
    assert "tensorflow-datasets 'cifar10': download failed (offline?)" in message
    assert "--set data.path=" in message and "SEMFED_DATA=" in message
    assert "\n" not in message


def test_missing_explicit_path_does_not_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _no_network_tfds(monkeypatch)
    with pytest.raises(DataError, match=r"path from data.path=.*nope: does not exist"):
        load_dataset(_config(tmp_path, tmp_path / "nope"), progress=False)
    assert calls == []


def test_tfds_offline_fails_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow_datasets as tfds

    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    def must_not_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tfds.load was called although the hosts cannot be resolved")

    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(tfds, "load", must_not_download)

    with pytest.raises(
        DataError, match=r"download failed \(offline\?\): cannot resolve www\.cs\.toronto\.edu"
    ):
        tfds_source.load_tfds("cifar10", data_dir=str(tmp_path / "tfds"))
    with pytest.raises(DataError, match="no_such_dataset_xyz not found"):
        tfds_source.load_tfds("no_such_dataset_xyz", data_dir=str(tmp_path / "tfds"))


def _fake_tfds(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """Stands in for tensorflow_datasets: an MNIST-like [N, 28, 28, 1] dataset."""
    rng = np.random.default_rng(0)
    splits = [
        (
            rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8),
            rng.integers(0, 10, n).astype(np.int32),
        )
        for n in (30, 10)
    ]
    label = types.SimpleNamespace(names=[str(i) for i in range(10)])
    info = types.SimpleNamespace(features={"image": object(), "label": label})
    builder = types.SimpleNamespace(info=info, is_prepared=lambda: True, url_infos={})

    def load(name: str, **kwargs: object) -> tuple:
        calls.append(name)
        assert kwargs["split"] == ["train", "test"] and kwargs["as_supervised"] is True
        assert kwargs["batch_size"] == -1
        return splits, info

    fake = types.SimpleNamespace(
        builder=lambda name, data_dir=None: builder, load=load, as_numpy=lambda t: t
    )
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)


def test_tfds_source_is_converted_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEMFED_DATA", raising=False)
    calls: list[str] = []
    _fake_tfds(monkeypatch, calls)
    config = _config(tmp_path, None, name="mnist")

    first = load_dataset(config, progress=False)
    second = load_dataset(config, progress=False)

    assert calls == ["mnist"]  # the second load never asked tensorflow-datasets
    assert first.source == "tfds:mnist" and second.source.startswith("cache:")
    assert first.x_train.shape == (30, 28, 28, 1) and first.y_train.dtype == np.int64
    assert second.name == "mnist" and second.class_names == tuple(str(i) for i in range(10))
    np.testing.assert_array_equal(second.x_test, first.x_test)


# --------------------------------------------------------------------------- validation


def test_check_dataset_rejects_bad_data() -> None:
    good = make_synthetic(num_classes=3, train_per_class=2, test_per_class=1, image_size=8)
    check_dataset(good)
    bad_labels = ImageDataset(**{**good.__dict__, "y_test": good.y_test + 3})
    with pytest.raises(DataError, match=r"test labels span \[3, 5\], outside \[0, 3\)"):
        check_dataset(bad_labels)
    bad_dtype = ImageDataset(**{**good.__dict__, "x_train": good.x_train.astype(np.float32)})
    with pytest.raises(DataError, match="x_train is float32"):
        check_dataset(bad_dtype)
    empty = ImageDataset(**{**good.__dict__, "x_test": good.x_test[:0], "y_test": good.y_test[:0]})
    with pytest.raises(DataError, match="test split is empty"):
        check_dataset(empty)
    other_shape = ImageDataset(**{**good.__dict__, "x_test": good.x_test[:, :4]})
    with pytest.raises(DataError, match="train images are"):
        check_dataset(other_shape)


# --------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_and_determinism() -> None:
    a = make_synthetic(num_classes=4, train_per_class=5, test_per_class=3, image_size=16, seed=7)
    b = make_synthetic(num_classes=4, train_per_class=5, test_per_class=3, image_size=16, seed=7)
    c = make_synthetic(num_classes=4, train_per_class=5, test_per_class=3, image_size=16, seed=8)

    assert a.x_train.shape == (20, 16, 16, 3) and a.x_test.shape == (12, 16, 16, 3)
    assert a.x_train.dtype == np.uint8 and a.y_train.dtype == np.int64
    assert np.bincount(a.y_train).tolist() == [5] * 4 and np.bincount(a.y_test).tolist() == [3] * 4
    assert a.num_classes == 4 and a.source == "synthetic" and a.name == "synthetic"
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.x_train, c.x_train)
    grey = make_synthetic(
        num_classes=3, train_per_class=2, test_per_class=1, image_size=8, channels=1
    )
    assert grey.x_train.shape == (6, 8, 8, 1)


def test_synthetic_from_config_uses_its_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMFED_DATA", str(tmp_path / "ignored"))  # synthetic reads no files
    config = DataConfig(
        name="synthetic",
        synthetic_classes=3,
        synthetic_train_per_class=4,
        synthetic_test_per_class=2,
        synthetic_image_size=8,
        cache_dir=str(tmp_path / "cache"),
    )
    ds = load_dataset(config, progress=False)
    assert ds.x_train.shape == (12, 8, 8, 3) and ds.x_test.shape == (6, 8, 8, 3)
    assert _cache_files(tmp_path) == []


def test_synthetic_is_learnable() -> None:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    ds = make_synthetic(num_classes=10, train_per_class=100, test_per_class=30, seed=3)

    def features(x: np.ndarray) -> np.ndarray:  # 32x32 -> 8x8 block means, flattened
        n, h, w, c = x.shape
        return x.reshape(n, 8, h // 8, 8, w // 8, c).mean(axis=(2, 4)).reshape(n, -1) / 255.0

    # One BLAS thread: on a busy two-core machine more threads make this fit 40x slower.
    with threadpool_limits(limits=1):
        model = LogisticRegression(max_iter=500).fit(features(ds.x_train), ds.y_train)
        accuracy = model.score(features(ds.x_test), ds.y_test)
    assert accuracy > 0.8


# --------------------------------------------------------------------------- real CIFAR-10


@pytest.mark.cifar
def test_cifar10_shared_copy() -> None:
    if not os.environ.get("SEMFED_DATA"):
        if os.environ.get("CI") == "true":
            pytest.fail("SEMFED_DATA is not set in CI: point it at the CIFAR-10 copy")
        pytest.skip("SEMFED_DATA is not set (outside CI): no CIFAR-10 copy to test")

    # Default cache folder ($SEMFED_CACHE or ~/.cache/semfed), so reruns are fast.
    ds = load_dataset(DataConfig(name="cifar10"), progress=False)

    assert ds.class_names == CIFAR10_NAMES
    assert ds.x_train.shape == (50_000, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (10_000, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert np.bincount(ds.y_train, minlength=10).tolist() == [5_000] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [1_000] * 10
    assert 50 < ds.x_test.mean() < 200  # real pixels, not zeros
