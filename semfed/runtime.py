"""How a semfed process starts TensorFlow: quietly, and saying which device runs the work.

What this module may touch: the environment variables that steer TensorFlow's
logging, file descriptor 2 while TensorFlow loads, and TensorFlow's device list.
It imports TensorFlow only inside its functions.

Why the descriptor and not only ``TF_CPP_MIN_LOG_LEVEL``: TensorFlow's start-up
messages (oneDNN, "Could not find cuda drivers", "failed call to cuInit" on a
machine without a GPU, preceded by absl's "All log messages before
absl::InitializeLog() ..." warning) are written by static initialisers of its
shared libraries, twice because two of them carry the same code, before
TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``: level 2 hides none of the I-level
lines and lets the E-level cuInit line through (checked with TensorFlow 2.21 on
a CPU-only machine). So :func:`start_tensorflow` imports TensorFlow and lists its
devices (which is when CUDA is initialised) with descriptor 2 pointed at a
temporary file, and keeps what was written there for ``semfed info``; from then
on ``TF_CPP_MIN_LOG_LEVEL`` (default 2 under ``semfed``) governs TensorFlow's
log. Quiet, TensorFlow's Python warning that a function "triggered retracing"
is also dropped for the functions semfed compiles once per encoder
architecture (:class:`PerArchitectureTraces`): five architectures traced once
each are not a retracing problem. ``semfed -v`` (``SEMFED_VERBOSE=1``,
inherited by the runs a sweep starts) leaves all of this alone.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

VERBOSE_ENV = "SEMFED_VERBOSE"
LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"

# Functions semfed compiles once per encoder architecture (the bench's pieces:
# once per architecture and federation). TensorFlow counts the traces of all
# functions sharing one code object together and warns of "retracing" from the
# fifth on, so five architectures traced once each read as a retracing problem.
# tests/test_performance.py counts these traces (one each, none after round 0).
PER_ARCHITECTURE_FUNCTIONS = frozenset(
    {
        "_assign_all",
        "Evaluator._make_scores.<locals>.scores",
        "GuardedStep.__init__.<locals>.fast_pass",
        "GuardedStep.__init__.<locals>.guarded",
        "_pieces.<locals>.encoder_step",
        "_pieces.<locals>.decoder_step",
        "_pieces.<locals>.floor_step",
        "_empty_call.<locals>.empty",
    }
)
_RETRACING = re.compile(r"calls to <function (\S+) at .*triggered tf\.function retracing")


class PerArchitectureTraces(logging.Filter):
    """Drops TensorFlow's retracing warning when it is about one of
    :data:`PER_ARCHITECTURE_FUNCTIONS`; every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        match = _RETRACING.search(record.getMessage())
        return not (match and match.group(1) in PER_ARCHITECTURE_FUNCTIONS)


def is_verbose() -> bool:
    """True when ``semfed -v`` (or ``SEMFED_VERBOSE=1``) asked for TensorFlow's own log."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def configure_logging(verbose: bool) -> None:
    """Set the environment before TensorFlow loads (and for the processes this one starts).

    Quiet: ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user set it. Verbose: the
    environment is left as the user has it and ``SEMFED_VERBOSE=1`` is passed on.
    """
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    elif not is_verbose():
        os.environ.setdefault(LOG_LEVEL_ENV, "2")


def start_tensorflow() -> str:
    """Import TensorFlow and initialise its devices, quietly unless verbose.

    Output
    ------
    : str
        What was written to stderr meanwhile ("" when verbose). Written out
        after all if the import fails, since the reason may be in it.
    """
    quiet = not is_verbose()
    if quiet:
        logger = logging.getLogger("tensorflow")
        if not any(isinstance(f, PerArchitectureTraces) for f in logger.filters):
            logger.addFilter(PerArchitectureTraces())
    try:
        saved = os.dup(2) if quiet else None
    except OSError:  # no descriptor 2 (a daemon): nothing to hide either
        saved = None
    if saved is None:
        _import_and_list_devices()
        return ""
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        failed = True
        try:
            _import_and_list_devices()
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            if failed:
                sys.stderr.write(text)
    return text


def _import_and_list_devices() -> None:
    import tensorflow as tf

    tf.config.list_physical_devices()  # initialises CUDA, where "cuInit" is logged


def cpu_threads() -> int:
    """Threads TensorFlow runs an op on: its intra-op setting, else the usable cores."""
    import tensorflow as tf

    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured > 0:
        return configured
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow sees, in its order (empty on a CPU-only machine)."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(details.get("device_name", gpu.name))
    return names


def device_summary() -> str:
    """Where TensorFlow places the work: ``"CPU (2 threads)"`` or the first GPU's name."""
    gpus = gpu_names()
    if not gpus:
        return f"CPU ({cpu_threads()} threads)"
    if len(gpus) == 1:
        return f"GPU {gpus[0]}"
    return f"GPU {gpus[0]} (the first of {len(gpus)} GPUs)"


def device_line(jit_compile: bool | None) -> str:
    """The line a command opens with, e.g.
    ``device: CPU (2 threads); link compiled with XLA: no (link.jit_compile = false)``.

    ``jit_compile`` None: it differs between the runs (a sweep's grid sets it).
    """
    if jit_compile is None:
        xla = "per run (the grid sets link.jit_compile)"
    else:
        xla = f"{'yes' if jit_compile else 'no'} (link.jit_compile = {str(jit_compile).lower()})"
    return f"device: {device_summary()}; link compiled with XLA: {xla}"


def announce_device(jit_compile: bool | None) -> None:
    """Start TensorFlow (quietly) and print :func:`device_line` to stderr."""
    start_tensorflow()
    print(device_line(jit_compile), file=sys.stderr, flush=True)
