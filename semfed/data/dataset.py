"""The in-memory image dataset every loader returns, and its validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from semfed.data.errors import DataError


# eq=False: the generated __eq__/__hash__ would compare or hash numpy arrays,
# which is ambiguous or impossible; identity is what callers need.
@dataclass(frozen=True, eq=False)
class ImageDataset:
    """An image-classification dataset held in memory.

    Attributes:
        name: dataset name (``cifar10``, ``mnist``, ``synthetic``, ...).
        x_train: uint8 ``[N, H, W, C]`` training images (C is 3 for RGB, 1 for grey).
        y_train: int64 ``[N]`` training labels in ``[0, num_classes)``.
        x_test: uint8 ``[M, H, W, C]`` test images, same ``H, W, C`` as ``x_train``.
        y_test: int64 ``[M]`` test labels in ``[0, num_classes)``.
        class_names: one name per class, index = label.
        source: where the arrays came from, for people: ``cache:/path``,
            ``tfds:cifar10``, ``/path/to/archive`` or ``synthetic``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes, ``len(class_names)``."""
        return len(self.class_names)


def check_dataset(ds: ImageDataset) -> None:
    """Raise :class:`DataError` unless ``ds`` is well formed.

    Well formed: x arrays uint8 and 4-D with one image shape, y arrays int64 and
    1-D with one label per image, both splits non-empty, at least one class and
    every label in ``[0, num_classes)``.
    """
    problems: list[str] = []
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if x.dtype != np.uint8 or x.ndim != 4:
            problems.append(f"x_{split} is {x.dtype} with shape {x.shape}, not uint8 [N, H, W, C]")
            continue
        if y.dtype != np.int64 or y.ndim != 1 or len(y) != len(x):
            problems.append(
                f"y_{split} is {y.dtype} with shape {y.shape}, not int64 [{len(x)}] "
                f"(one label per image)"
            )
            continue
        if len(x) == 0:
            problems.append(f"the {split} split is empty")
            continue
        if ds.num_classes and (y.min() < 0 or y.max() >= ds.num_classes):
            problems.append(
                f"{split} labels span [{y.min()}, {y.max()}], outside [0, {ds.num_classes})"
            )
    if ds.num_classes == 0:
        problems.append("there are no class names")
    if not problems and ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        problems.append(
            f"train images are {ds.x_train.shape[1:]} but test images are {ds.x_test.shape[1:]}"
        )
    if problems:
        raise DataError(f"The data from {ds.source} is not usable: " + "; ".join(problems) + ".")
