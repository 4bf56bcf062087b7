"""On-disk cache of decoded datasets: one uncompressed ``.npz`` per source.

A cache file is named after the source's identity (its path, or the
tensorflow-datasets name) and records the source's fingerprint; when the
fingerprint no longer matches, the file is rebuilt in place, so stale copies do
not pile up. Files are written to a temporary name and renamed, so a reader never
sees a half-written cache, and anything unreadable is treated as a miss.
Uncompressed storage keeps a full CIFAR-10 load to a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from semfed.data.dataset import ImageDataset, check_dataset

CACHE_ENV = "SEMFED_CACHE"
# Bump when the decoded arrays of some source would change, to invalidate old files.
CACHE_VERSION = 1

_log = logging.getLogger(__name__)


def cache_dir(configured: str | None) -> Path:
    """The cache folder: ``configured``, else ``$SEMFED_CACHE``, else ``~/.cache/semfed``."""
    chosen = configured or os.environ.get(CACHE_ENV) or "~/.cache/semfed"
    return Path(chosen).expanduser()


def cache_file(folder: Path, identity: str) -> Path:
    """The cache file for the source named ``identity`` (a path or a tfds name)."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(identity).name or identity)[:40]
    return folder / f"{stem}-{digest}.npz"


def read_cache(file: Path, fingerprint: str) -> tuple[ImageDataset, str] | None:
    """The dataset and format tag cached in ``file``, or None on any miss.

    A miss: no file, a different fingerprint or cache version, or a file that
    cannot be read or fails validation (it is then logged and later overwritten).
    """
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"][()]))
            if meta.get("fingerprint") != fingerprint or meta.get("version") != CACHE_VERSION:
                _log.info("cache %s is for an older copy of the data; rebuilding it", file)
                return None
            ds = ImageDataset(
                name=str(meta["name"]),
                x_train=stored["x_train"],
                y_train=stored["y_train"],
                x_test=stored["x_test"],
                y_test=stored["y_test"],
                class_names=tuple(str(c) for c in stored["class_names"]),
                source=f"cache:{file} (of {meta['source']})",
            )
        check_dataset(ds)
    # A cache is disposable: whatever makes it unreadable (garbage, truncation,
    # missing keys, bad arrays) means "rebuild", never a crash.
    except Exception as err:
        _log.warning("ignoring unreadable data cache %s (%s); rebuilding it", file, err)
        return None
    return ds, str(meta["format"])


def write_cache(file: Path, fingerprint: str, ds: ImageDataset, fmt: str) -> None:
    """Store ``ds`` (already validated) in ``file`` atomically.

    Raises OSError when the folder cannot be written; no partial file is left.
    """
    file.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "format": fmt,
        "name": ds.name,
        "source": ds.source,
    }
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                x_train=ds.x_train,
                y_train=ds.y_train,
                x_test=ds.x_test,
                y_test=ds.y_test,
                class_names=np.array(ds.class_names, dtype=str),
                meta=np.array(json.dumps(meta)),
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache folder may be shared
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
