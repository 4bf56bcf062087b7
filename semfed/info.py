"""The environment report of ``semfed info``: what a user pastes into a bug report.

What this module may touch: package metadata, TensorFlow (started through
:mod:`semfed.runtime`, then two tiny probes: an XLA-compiled function and a
bfloat16 matmul), the environment variables that pick the data, and the data
cache folder (read only: file sizes and each cache file's small ``meta``
entry). It never goes on the network, so it works offline.

The report is a list of sections, each a list of (key, value) lines, so that
tests and callers can read it without parsing text.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
import time
from pathlib import Path

from semfed import __version__
from semfed.config import DataConfig

Section = tuple[str, list[tuple[str, str]]]

# Distributions whose versions matter in a bug report, by the name shown.
PACKAGES = (
    ("tensorflow", ("tensorflow", "tensorflow-cpu", "tf-nightly")),
    ("keras", ("keras",)),
    ("sionna", ("sionna-no-rt", "sionna")),
    ("numpy", ("numpy",)),
    ("tensorflow-datasets", ("tensorflow-datasets",)),
)


def _version(distributions: tuple[str, ...]) -> str:
    for name in distributions:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return version if name == distributions[0] else f"{version} ({name})"
    return "not installed"


def versions() -> Section:
    """semfed, Python and the packages of :data:`PACKAGES`."""
    lines = [
        ("semfed", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
    ]
    lines += [(shown, _version(names)) for shown, names in PACKAGES]
    return "versions", lines


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def probe_xla() -> str:
    """Compile and run a tiny function with XLA: "yes (...)" or "no: <why>"."""
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def affine_sum(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(2.0 * x + 1.0)

    t0 = time.perf_counter()
    try:
        value = float(affine_sum(tf.ones([8])))
    except Exception as err:  # any failure to compile or run is the answer
        return f"no: {_first_line(err)}"
    if value != 24.0:
        return f"no: a compiled 2 x + 1 summed to {value}, not 24"
    return (
        f"yes (a tiny jit-compiled function compiled and ran in {time.perf_counter() - t0:.2f} s)"
    )


def probe_bfloat16() -> str:
    """Run a tiny bfloat16 matmul: "yes" or "no: <why>"."""
    import tensorflow as tf

    try:
        ones = tf.ones([8, 8], dtype=tf.bfloat16)
        product = tf.matmul(ones, ones)
        ok = bool(tf.reduce_all(tf.equal(tf.cast(product, tf.float32), 8.0)))
    except Exception as err:
        return f"no: {_first_line(err)}"
    return "yes (an 8 x 8 bfloat16 matmul is exact)" if ok else "no: wrong matmul result"


def tensorflow_section(startup_log: str) -> Section:
    """Devices TensorFlow sees, its build, the XLA and bfloat16 probes."""
    import tensorflow as tf

    from semfed.runtime import cpu_threads, device_summary, gpu_names

    build = tf.sysconfig.get_build_info()
    cuda = (
        f"with CUDA {build.get('cuda_version', '?')}, cuDNN {build.get('cudnn_version', '?')}"
        if build.get("is_cuda_build")
        else "without CUDA"
    )
    devices = ", ".join(
        d.name.replace("/physical_device:", "") for d in tf.config.list_physical_devices()
    )
    hidden = len(startup_log.splitlines())
    lines = [
        ("devices", devices or "none"),
        ("gpus", "; ".join(gpu_names()) or "none"),
        ("cpu threads", str(cpu_threads())),
        ("runs on", device_summary()),
        ("build", cuda),
        ("xla", probe_xla()),
        ("bfloat16", probe_bfloat16()),
        (
            "start-up messages",
            f"{hidden} hidden (semfed -v info shows them)" if hidden else "none hidden",
        ),
    ]
    return "tensorflow", lines


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _cache_state(file: Path, fingerprint: str | None) -> str:
    """A cache file's size and whether it matches the source (read from its meta only)."""
    import json

    import numpy as np

    from semfed.data import cache

    if not file.is_file():
        return f"none yet at {file} (the first run decodes the data and writes it)"
    state = ""
    try:
        with np.load(file, allow_pickle=False) as stored:
            meta = json.loads(str(stored["meta"][()]))
        current = meta.get("fingerprint") == fingerprint and meta.get("version") == (
            cache.CACHE_VERSION
        )
        state = ", current" if current else ", stale (will be rebuilt)"
    except Exception:  # an unreadable cache is rebuilt on use
        state = ", unreadable (will be rebuilt)"
    return f"{file} ({_size(file.stat().st_size)}{state})"


def _tfds_lines(config: DataConfig, folder: Path, key: str) -> list[tuple[str, str]]:
    from semfed.data import cache, tfds_source

    tfds_dir = os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    there = "exists" if Path(tfds_dir).expanduser().is_dir() else "absent"
    try:
        fingerprint = tfds_source.tfds_fingerprint(config.name)
    except Exception:  # tensorflow-datasets missing: no cache can be current
        fingerprint = None
    file = cache.cache_file(folder, f"tfds-{config.name}")
    return [
        (
            key,
            f"tensorflow-datasets {config.name!r}, downloaded when online into {tfds_dir} "
            f"({there})",
        ),
        ("cache", _cache_state(file, fingerprint)),
    ]


def data_section(config: DataConfig) -> Section:
    """Where ``config``'s data would come from (the order of ``load_dataset``), and the
    cache; reads no image."""
    from semfed.data import DATA_ENV, cache, sources

    folder = cache.cache_dir(config.cache_dir)
    env_path = os.environ.get(DATA_ENV) or None
    lines = [
        ("name", config.name),
        ("data.path", config.path or "unset"),
        (DATA_ENV, env_path or "unset"),
    ]
    path, origin = (config.path, "data.path") if config.path else (env_path, DATA_ENV)
    if config.name == "synthetic":
        lines.append(("source", "synthetic images, generated in memory (no file, no cache)"))
    elif path is None:
        lines += _tfds_lines(config, folder, "source")
    elif Path(path).expanduser().exists():
        local = Path(path).expanduser()
        lines.append(("source", f"local copy {local} (from {origin})"))
        file = cache.cache_file(folder, str(local.resolve()))
        lines.append(("cache", _cache_state(file, sources.fingerprint_path(local))))
    elif origin == "data.path":
        lines.append(("source", f"{path} (from data.path) does not exist: loading would fail"))
    else:
        lines.append(("source", f"{path} (from {DATA_ENV}) does not exist, so instead:"))
        lines += _tfds_lines(config, folder, "then")
    files = [f for f in folder.rglob("*") if f.is_file()] if folder.is_dir() else []
    if config.cache_dir:
        chosen = "from data.cache_dir"
    elif os.environ.get(cache.CACHE_ENV):
        chosen = f"from {cache.CACHE_ENV}"
    else:
        chosen = "the default"
    lines.append(("cache folder", f"{folder} ({chosen})"))
    size = sum(f.stat().st_size for f in files)
    count = f"{len(files)} file" + ("s" if len(files) != 1 else "")
    lines.append(("cache size", f"{_size(size)} in {count}" if files else "empty"))
    return "data", lines


def report(config: DataConfig, startup_log: str = "") -> list[Section]:
    """The whole report: versions, TensorFlow, data (TensorFlow must be started)."""
    return [versions(), tensorflow_section(startup_log), data_section(config)]


def format_report(sections: list[Section]) -> str:
    """Sections as ``name`` headers over aligned ``  key: value`` lines."""
    width = max(len(key) for _, lines in sections for key, _ in lines)
    out = []
    for title, lines in sections:
        out.append(f"{title}:")
        out += [f"  {key + ':':<{width + 1}} {value}" for key, value in lines]
    return "\n".join(out)
