"""Image datasets for the federated experiments: loading, caching, synthetic data.

:func:`load_dataset` turns a :class:`~semfed.config.DataConfig` into an
:class:`ImageDataset` of uint8 images and int64 labels. Sources, in order:

1. ``name = "synthetic"``: :func:`make_synthetic`, nothing read from disk;
2. a local copy at ``data.path``, else at ``$SEMFED_DATA`` (the official CIFAR
   python archive or folder, a class-folder tree, or a tar of one);
3. with no local path, tensorflow-datasets by ``name`` (downloads when online).

Decoded arrays of 2 and 3 are cached as one ``.npz`` per source in
``data.cache_dir``, else ``$SEMFED_CACHE``, else ``~/.cache/semfed``, keyed by a
fingerprint of the source so a changed source is decoded again. When nothing
works, one :class:`DataError` says what was tried and how to point at a copy.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from semfed.config import DataConfig
from semfed.data import cache, sources, tfds_source
from semfed.data.dataset import ImageDataset, check_dataset
from semfed.data.errors import DataError
from semfed.data.synthetic import make_synthetic

__all__ = ["DATA_ENV", "DataError", "ImageDataset", "load_dataset", "make_synthetic"]

DATA_ENV = "SEMFED_DATA"

_log = logging.getLogger(__name__)


def load_dataset(config: DataConfig, *, progress: bool = True) -> ImageDataset:
    """Load the dataset ``config`` describes, from the cache when it is current.

    Returns an :class:`ImageDataset`: ``x_train`` uint8 ``[N, H, W, C]``,
    ``y_train`` int64 ``[N]``, ``x_test`` uint8 ``[M, H, W, C]``, ``y_test`` int64
    ``[M]``, labels in ``[0, num_classes)``. ``progress`` shows a progress bar on
    stderr while decoding. Raises :class:`DataError` when no source works or a
    source is unusable (unsupported, corrupt, inconsistent).
    """
    if config.name == "synthetic":
        return make_synthetic(
            num_classes=config.synthetic_classes,
            train_per_class=config.synthetic_train_per_class,
            test_per_class=config.synthetic_test_per_class,
            image_size=config.synthetic_image_size,
        )

    cache_dir = cache.cache_dir(config.cache_dir)
    tried: list[str] = []
    path, origin = _local_path(config)
    if path is None:
        tried.append(f"local copy: none given (data.path and {DATA_ENV} are unset)")
    else:
        local = Path(path).expanduser()
        if local.exists():
            return _load_local(local, config.name, cache_dir, origin, progress)
        tried.append(f"path from {origin}={path}: does not exist")
        if origin == "data.path":
            # An explicit path states what the user wants; downloading something
            # else instead would hide the typo.
            tried.append("tensorflow-datasets: not tried, because data.path is set")
            raise DataError(_nothing_worked(config.name, tried))

    try:
        fingerprint = tfds_source.tfds_fingerprint(config.name)
        ds, _ = _cached(
            cache_dir,
            f"tfds-{config.name}",
            fingerprint,
            lambda: (tfds_source.load_tfds(config.name), "tfds"),
        )
        return ds
    # Whatever tensorflow-datasets raised becomes one line of the final message.
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        tried.append(f"tensorflow-datasets {config.name!r}: {reason}")
    raise DataError(_nothing_worked(config.name, tried))


def _local_path(config: DataConfig) -> tuple[str | None, str]:
    if config.path:
        return config.path, "data.path"
    return os.environ.get(DATA_ENV) or None, DATA_ENV


def _load_local(
    path: Path, name: str, cache_dir: Path, origin: str, progress: bool
) -> ImageDataset:
    try:
        fingerprint = sources.fingerprint_path(path)
    except OSError as err:
        raise DataError(f"{path} (from {origin}) cannot be read: {err}.") from err
    ds, fmt = _cached(
        cache_dir,
        str(path.resolve()),
        fingerprint,
        lambda: sources.read_local(path, name=name, progress=progress),
    )
    actual = sources.identify(ds, fmt)
    if actual is None:
        return replace(ds, name=name)  # the user's own tree is whatever data.name says
    if actual != name:
        what = "the official archive" if fmt in sources.OFFICIAL_NAMES else "a class-folder tree"
        raise DataError(
            f"{path} (from {origin}) is {what} of {actual}, but data.name is {name!r}. "
            f"Set data.name = {actual!r}, or point data.path at a copy of {name}."
        )
    return replace(ds, name=actual)


def _cached(
    cache_dir: Path,
    identity: str,
    fingerprint: str,
    decode: Callable[[], tuple[ImageDataset, str]],
) -> tuple[ImageDataset, str]:
    """The cached dataset for ``identity`` if current, else ``decode()`` then cache it."""
    file = cache.cache_file(cache_dir, identity)
    hit = cache.read_cache(file, fingerprint)
    if hit is not None:
        return hit
    ds, fmt = decode()
    check_dataset(ds)  # only validated data is ever cached
    try:
        cache.write_cache(file, fingerprint, ds, fmt)
    except OSError as err:
        # The data is fine; only the next run will be slower.
        _log.warning("could not write the data cache %s (%s); continuing without it", file, err)
    return ds, fmt


def _nothing_worked(name: str, tried: list[str]) -> str:
    return (
        f"Could not load the dataset {name!r}. Tried: "
        + "; ".join(tried)
        + ". To use a local copy, set data.path in the config, pass "
        "--set data.path=/path/to/cifar-10-python.tar.gz, or set "
        f"{DATA_ENV}=/path/to/copy. Accepted local copies: {sources.ACCEPTED_FORMATS}."
    )
