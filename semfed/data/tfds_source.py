"""Online source: any image-classification dataset of tensorflow-datasets.

tensorflow_datasets is imported inside the functions: importing it (and with it
TensorFlow) costs seconds that runs using a local copy or the cache never pay.
"""

from __future__ import annotations

import importlib.metadata
import os
import socket
from collections.abc import Iterable
from urllib.parse import urlparse

import numpy as np

from semfed.data.dataset import ImageDataset
from semfed.data.errors import DataError

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def tfds_fingerprint(name: str) -> str:
    """Identifies what ``name`` means: the dataset name and the tensorflow-datasets release.

    Raises :class:`DataError` when tensorflow-datasets is not installed.
    """
    try:
        release = importlib.metadata.version("tensorflow-datasets")
    except importlib.metadata.PackageNotFoundError as err:
        raise DataError("tensorflow-datasets is not installed") from err
    return f"tfds\0{name}\0{release}"


def _first_line(err: BaseException, limit: int = 200) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def unreachable_reason(urls: Iterable[str]) -> str | None:
    """Why none of the download hosts of ``urls`` can be reached, or None if one can.

    Only host names are resolved (no connection is made). tensorflow-datasets
    retries a failed download with back-off for minutes; this check makes an
    offline machine fail at once. With a proxy configured, names may resolve only
    at the proxy, so nothing is checked.
    """
    hosts = sorted({host for url in urls if (host := urlparse(url).hostname)})
    if not hosts or any(os.environ.get(var) for var in _PROXY_VARS):
        return None
    failures = []
    for host in hosts:
        try:
            socket.getaddrinfo(host, 443)
        except OSError as err:
            failures.append(f"cannot resolve {host} ({err})")
        else:
            return None
    return "; ".join(failures)


def load_tfds(name: str, *, data_dir: str | None = None) -> ImageDataset:
    """Load the ``train`` and ``test`` splits of tensorflow-datasets' ``name``.

    Downloads and prepares the dataset on first use (into ``data_dir``, default
    tensorflow-datasets' own). Images stay as tensorflow-datasets gives them:
    uint8 ``[N, H, W, C]`` (C = 1 for mnist); labels become int64 ``[N]``; class
    names come from the ``label`` feature. Raises :class:`DataError` with a
    one-line reason when the package is missing, the name is unknown, the dataset
    is not image classification, or the download fails.
    """
    try:
        from semfed.runtime import start_tensorflow

        start_tensorflow()  # tensorflow-datasets imports TensorFlow: quietly, as semfed does
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise DataError(f"tensorflow-datasets cannot be imported ({_first_line(err)})") from err

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # unknown names raise DatasetNotFoundError, a ValueError
        raise DataError(_first_line(err)) from err
    features = builder.info.features
    if "image" not in features or "label" not in features:
        raise DataError("not an image-classification dataset (needs 'image' and 'label')")
    if not builder.is_prepared():
        try:
            urls = list((builder.url_infos or {}).keys())
        except (OSError, ValueError):  # no readable checksums file: let tfds try
            urls = []
        reason = unreachable_reason(urls)
        if reason is not None:
            raise DataError(f"download failed (offline?): {reason}")

    try:
        (train, test), info = tfds.load(
            name,
            split=["train", "test"],
            as_supervised=True,
            batch_size=-1,
            with_info=True,
            data_dir=data_dir,
        )
    except Exception as err:  # download, preparation and split errors of every kind
        # Network failures (requests' included) are OSErrors.
        what = "download failed (offline?)" if isinstance(err, OSError) else "loading failed"
        raise DataError(f"{what}: {_first_line(err)}") from err
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
    return ImageDataset(
        name=name,
        x_train=np.asarray(x_train, dtype=np.uint8),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=np.asarray(x_test, dtype=np.uint8),
        y_test=np.asarray(y_test, dtype=np.int64),
        class_names=tuple(info.features["label"].names),
        source=f"tfds:{name}",
    )
