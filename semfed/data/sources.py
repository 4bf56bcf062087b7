"""Local, offline data sources: the official CIFAR python archives and image trees.

Accepted paths (see :data:`ACCEPTED_FORMATS`):

- the official CIFAR-10 python archive ``cifar-10-python.tar.gz`` (or CIFAR-100's
  ``cifar-100-python.tar.gz``), or its extracted folder ``cifar-10-batches-py/``,
  or a folder holding that folder;
- a class-folder tree ``train/<class>/*.png|jpg|...`` and ``test/<class>/*``,
  directly in the folder or one level down (``top/train/...``);
- a ``.tar``, ``.tar.gz`` or ``.tgz`` of such a tree.

Archives are read member by member in one streaming pass; nothing is extracted.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tarfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from semfed.data.dataset import ImageDataset
from semfed.data.errors import DataError

ACCEPTED_FORMATS = (
    "the official CIFAR-10 (or CIFAR-100) python archive cifar-10-python.tar.gz or its "
    "extracted folder cifar-10-batches-py/; a class-folder tree train/<class>/*.png|jpg and "
    "test/<class>/*.png|jpg (optionally inside one top folder); or a .tar/.tar.gz/.tgz of "
    "such a tree"
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
SPLITS = ("train", "test")

# Official layouts: {file name: role}. Roles: "meta", or the split the batch holds.
CIFAR10_FILES = {
    "batches.meta": "meta",
    **{f"data_batch_{i}": "train" for i in range(1, 6)},
    "test_batch": "test",
}
CIFAR100_DIR = "cifar-100-python"
CIFAR100_FILES = {"meta": "meta", "train": "train", "test": "test"}

# Format tags, stored with cached arrays so a cache hit knows what it holds.
FORMAT_CIFAR10 = "cifar10-python"
FORMAT_CIFAR100 = "cifar100-python"
FORMAT_TREE = "image-tree"
OFFICIAL_NAMES = {FORMAT_CIFAR10: "cifar10", FORMAT_CIFAR100: "cifar100"}

# CIFAR-10's classes, in label order (also the sorted folder names of a tree of it).
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _unsupported(path: Path, why: str) -> DataError:
    return DataError(f"{path}: {why}. Accepted data paths: {ACCEPTED_FORMATS}.")


def is_tar_name(path: Path) -> bool:
    """Whether the file name says tar archive (``.tar``, ``.tar.gz``, ``.tgz``, ...)."""
    return path.name.lower().endswith(TAR_SUFFIXES)


# --------------------------------------------------------------------------- fingerprints


def fingerprint_path(path: Path) -> str:
    """A string that changes whenever the data at ``path`` changes.

    For a file: absolute path, size and modification time (ns). For a folder: the
    same for every file below it; stat-ing even 60,000 files takes well under a
    second, far less than decoding them.
    """
    path = path.resolve()
    digest = hashlib.sha256()
    if path.is_file():
        st = path.stat()
        digest.update(f"file\0{path}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    else:
        digest.update(f"dir\0{path}".encode())
        for rel, st in sorted(_walk_files(path)):
            digest.update(f"\0{rel}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()


def _walk_files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=True):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=True):
                    yield os.path.relpath(entry.path, root), entry.stat()


# --------------------------------------------------------------------------- official CIFAR

# The official batches are pickles. Unpickling arbitrary data can run code, so
# only the globals a pickled numpy array needs are allowed, resolved through
# numpy itself so this works whichever numpy wrote the file.
_ARRAY = np.zeros(1, np.uint8)
_PICKLE_GLOBALS: dict[str, object] = {
    "_reconstruct": _ARRAY.__reduce__()[0],
    "scalar": np.float64(0).__reduce__()[0],
    "ndarray": np.ndarray,
    "dtype": np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if module.startswith("numpy") and name in _PICKLE_GLOBALS:
            return _PICKLE_GLOBALS[name]
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 stores bytes
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")


def _unpickle(blob: bytes, where: str) -> dict[str, object]:
    try:
        obj = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as err:  # a damaged pickle can fail in many ways
        raise DataError(f"{where}: not a readable CIFAR batch file ({err}).") from err
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a CIFAR batch file (holds a {type(obj).__name__}).")
    # Python 2 wrote the official files with byte-string keys; re-pickled copies have str.
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _names(values: object, where: str) -> tuple[str, ...]:
    if not isinstance(values, list | tuple) or not values:
        raise DataError(f"{where}: the class names are missing.")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


def _batch_arrays(batch: dict[str, object], label_key: str, where: str) -> tuple[np.ndarray, ...]:
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{where}: 'data' is not an [N, 3072] array of CIFAR images.")
    if labels is None or len(labels) != len(data):  # type: ignore[arg-type]
        raise DataError(f"{where}: '{label_key}' does not hold one label per image.")
    # Rows are the red, green and blue 32x32 planes one after the other.
    x = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(labels, dtype=np.int64)


def _official_dataset(fmt: str, blobs: dict[str, bytes], where: str, source: str) -> ImageDataset:
    """Build a dataset from the official files' raw bytes, keyed by file name."""
    files = CIFAR10_FILES if fmt == FORMAT_CIFAR10 else CIFAR100_FILES
    missing = [name for name in files if name not in blobs]
    if missing:
        raise DataError(
            f"{where}: incomplete {OFFICIAL_NAMES[fmt]} python archive, missing "
            f"{', '.join(missing)}; it may be truncated."
        )
    meta = _unpickle(blobs["meta" if fmt == FORMAT_CIFAR100 else "batches.meta"], where)
    if fmt == FORMAT_CIFAR10:
        class_names, label_key = _names(meta.get("label_names"), where), "labels"
    else:
        class_names, label_key = _names(meta.get("fine_label_names"), where), "fine_labels"
    arrays: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for name, role in files.items():
        if role != "meta":
            batch = _unpickle(blobs[name], f"{where} ({name})")
            arrays[role].append(_batch_arrays(batch, label_key, f"{where} ({name})"))
    (x_train, y_train), (x_test, y_test) = (
        (np.concatenate([x for x, _ in arrays[s]]), np.concatenate([y for _, y in arrays[s]]))
        for s in SPLITS
    )
    return ImageDataset(
        name=OFFICIAL_NAMES[fmt],
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=class_names,
        source=source,
    )


def _official_folder(folder: Path) -> str | None:
    """The official format whose files ``folder`` holds, if any."""
    if all((folder / name).is_file() for name in CIFAR10_FILES):
        return FORMAT_CIFAR10
    if folder.name == CIFAR100_DIR and all((folder / n).is_file() for n in CIFAR100_FILES):
        return FORMAT_CIFAR100
    return None


# --------------------------------------------------------------------------- image trees


@dataclass
class _TreeImages:
    """Decoded tree images as they arrive, in any order."""

    where: str
    # (split, class, file name) -> RGB uint8 [H, W, 3]
    images: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict)

    def add(self, split: str, cls: str, name: str, data: bytes, label: str) -> None:
        self.images[(split, cls, name)] = _decode(data, label)

    def build(self, source: str, dataset_name: str) -> ImageDataset:
        by_split = {s: sorted(k for k in self.images if k[0] == s) for s in SPLITS}
        for split in SPLITS:
            if not by_split[split]:
                raise _unsupported(Path(self.where), f"no images under {split}/<class>/")
        class_names = tuple(sorted({cls for _, cls, _ in by_split["train"]}))
        extra = sorted({cls for _, cls, _ in by_split["test"]} - set(class_names))
        if extra:
            raise DataError(
                f"{self.where}: test/ has classes that train/ lacks: {', '.join(extra)}."
            )
        shapes = Counter(img.shape for img in self.images.values())
        if len(shapes) > 1:
            common = shapes.most_common(1)[0][0]
            odd = next(k for k in sorted(self.images) if self.images[k].shape != common)
            h, w = self.images[odd].shape[:2]
            raise DataError(
                f"{self.where}: {'/'.join(odd)} is {w}x{h} pixels but the other images are "
                f"{common[1]}x{common[0]}; all images of a tree must share one size."
            )
        label_of = {cls: i for i, cls in enumerate(class_names)}
        arrays = []
        for split in SPLITS:
            keys = by_split[split]
            arrays.append(np.stack([self.images[k] for k in keys]))
            arrays.append(np.array([label_of[cls] for _, cls, _ in keys], dtype=np.int64))
        x_train, y_train, x_test, y_test = arrays
        return ImageDataset(
            name=dataset_name,
            x_train=x_train,
            y_train=y_train,
            x_test=x_test,
            y_test=y_test,
            class_names=class_names,
            source=source,
        )


def _decode(data: bytes, label: str) -> np.ndarray:
    """Decode one image file to RGB uint8 ``[H, W, 3]``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataError(f"{label}: cannot decode the image ({err}).") from err


def _is_image_name(name: str) -> bool:
    # Hidden files include macOS "._x.jpg" resource forks, which are not images.
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def _tree_root(folder: Path) -> Path | None:
    """``folder`` or its single child holding ``train/`` and ``test/``, if any."""
    if all((folder / s).is_dir() for s in SPLITS):
        return folder
    candidates = [
        child
        for child in sorted(folder.iterdir())
        if child.is_dir()
        and not child.name.startswith(".")
        and all((child / s).is_dir() for s in SPLITS)
    ]
    if len(candidates) > 1:
        raise DataError(
            f"{folder}: more than one image tree ({', '.join(c.name for c in candidates)}); "
            "point data.path at one of them."
        )
    return candidates[0] if candidates else None


def _progress(total: int | None, progress: bool, desc: str, **kwargs: object) -> tqdm:
    return tqdm(
        total=total, disable=not progress, file=sys.stderr, desc=desc, leave=False, **kwargs
    )


def _read_tree_folder(root: Path, dataset_name: str, progress: bool, source: str) -> ImageDataset:
    files = [
        (split, class_dir.name, image.name, image)
        for split in SPLITS
        for class_dir in sorted((root / split).iterdir())
        if class_dir.is_dir() and not class_dir.name.startswith(".")
        for image in sorted(class_dir.iterdir())
        if _is_image_name(image.name) and image.is_file()
    ]
    tree = _TreeImages(where=str(root))
    with _progress(len(files), progress, f"decoding {root.name}", unit="img") as bar:
        for split, cls, name, image in files:
            tree.add(split, cls, name, image.read_bytes(), str(image))
            bar.update()
    return tree.build(source, dataset_name)


# --------------------------------------------------------------------------- tar archives


class _CountingReader(io.RawIOBase):
    """Passes reads through and reports how many bytes went by (for the progress bar)."""

    def __init__(self, raw: BinaryIO, on_read: Callable[[int], object]) -> None:
        self._raw, self._on_read = raw, on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._on_read(n or 0)
        return n or 0


def _member_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in PurePosixPath(name).parts if p not in ("", ".", "/"))


def _read_tar(
    path: Path, dataset_name: str, progress: bool, source: str
) -> tuple[ImageDataset, str]:
    blobs: dict[str, dict[str, bytes]] = {FORMAT_CIFAR10: {}, FORMAT_CIFAR100: {}}
    tree = _TreeImages(where=str(path))
    tops: set[str] = set()
    size = path.stat().st_size
    with (
        open(path, "rb") as raw,
        _progress(size, progress, f"reading {path.name}", unit="B", unit_scale=True) as bar,
    ):
        counted = io.BufferedReader(_CountingReader(raw, bar.update))
        try:
            # Stream mode ("r|*") reads the archive once, front to back, with no seeks.
            with tarfile.open(fileobj=counted, mode="r|*") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    parts = _member_parts(member.name)
                    if not parts:
                        continue
                    base = parts[-1]
                    if base in CIFAR10_FILES:
                        blobs[FORMAT_CIFAR10][base] = _read_member(tar, member)
                    elif len(parts) >= 2 and parts[-2] == CIFAR100_DIR and base in CIFAR100_FILES:
                        blobs[FORMAT_CIFAR100][base] = _read_member(tar, member)
                    elif _is_image_name(base) and len(parts) in (3, 4) and parts[-3] in SPLITS:
                        tops.add(parts[0] if len(parts) == 4 else "")
                        tree.add(
                            parts[-3],
                            parts[-2],
                            base,
                            _read_member(tar, member),
                            f"{path}:{member.name}",
                        )
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            if not is_tar_name(path) and not any(blobs.values()) and not tree.images:
                raise _unsupported(path, f"not a tar archive ({err})") from err
            raise DataError(
                f"{path}: cannot read the archive ({err}); it is probably truncated or "
                "corrupt. Download or copy it again."
            ) from err
    for fmt in (FORMAT_CIFAR10, FORMAT_CIFAR100):
        if blobs[fmt]:
            return _official_dataset(fmt, blobs[fmt], str(path), source), fmt
    if len(tops) > 1:
        raise DataError(
            f"{path}: the archive holds more than one image tree "
            f"({', '.join(sorted(t or '.' for t in tops))}); keep one."
        )
    if not tree.images:
        raise _unsupported(path, "the archive holds neither CIFAR batches nor train/ and test/")
    return tree.build(source, dataset_name), FORMAT_TREE


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise DataError(f"{member.name}: cannot read this archive member.")
    return handle.read()


# --------------------------------------------------------------------------- entry point


def read_local(path: Path, *, name: str, progress: bool = True) -> tuple[ImageDataset, str]:
    """Decode the local copy at ``path`` (which must exist).

    ``name`` names a class-folder tree (official archives name themselves).
    Returns the dataset (uint8 ``[N, H, W, C]`` images, int64 labels, ``source`` =
    the absolute path) and its format tag (``FORMAT_*``). Raises
    :class:`DataError` for an unsupported, corrupt or inconsistent source.
    """
    path = path.resolve()
    source = str(path)
    if path.is_file():
        # Checked up front so an unrelated file fails before any progress bar shows.
        if not is_tar_name(path) and not tarfile.is_tarfile(path):
            raise _unsupported(path, "not a tar archive")
        return _read_tar(path, name, progress, source)
    if not path.is_dir():
        raise _unsupported(path, "neither a file nor a folder")
    for folder in (path, path / "cifar-10-batches-py", path / CIFAR100_DIR):
        fmt = _official_folder(folder) if folder.is_dir() else None
        if fmt is not None:
            files = CIFAR10_FILES if fmt == FORMAT_CIFAR10 else CIFAR100_FILES
            blobs = {n: (folder / n).read_bytes() for n in files}
            return _official_dataset(fmt, blobs, str(folder), source), fmt
    root = _tree_root(path)
    if root is None:
        raise _unsupported(
            path, "this folder holds neither CIFAR batch files nor train/ and test/ folders"
        )
    return _read_tree_folder(root, name, progress, source), FORMAT_TREE


def identify(ds: ImageDataset, fmt: str) -> str | None:
    """Which CIFAR a decoded local copy is (``cifar10`` or ``cifar100``), or None.

    An official archive names itself. A class-folder tree is CIFAR-10 when its
    classes are CIFAR-10's ten, CIFAR-100 when it has 100 classes of 32x32 colour
    images; any other tree is an image set of the user's, named by ``data.name``.
    """
    if fmt in OFFICIAL_NAMES:
        return OFFICIAL_NAMES[fmt]
    if tuple(ds.class_names) == CIFAR10_CLASSES:
        return "cifar10"
    if ds.num_classes == 100 and ds.x_train.shape[1:] == (32, 32, 3):
        return "cifar100"
    return None
