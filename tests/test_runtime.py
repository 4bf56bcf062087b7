"""A newcomer's first minutes: quiet start-up, the device line, one final progress line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny_setting import TINY_TOML

# The tiny synthetic run of tests/tiny_setting.py, two rounds: the process takes ~10 s,
# most of it TensorFlow's import.

REPO = Path(__file__).resolve().parents[1]


def semfed_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m semfed ARGV`` as a user starts it: no TensorFlow settings inherited."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "SEMFED_VERBOSE")
    }
    return subprocess.run(
        [sys.executable, "-m", "semfed", *argv],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=REPO,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_train_prints_no_tensorflow_log_lines_and_ends_the_bar_once(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    # two rounds with the progress bar on, the link at its default (compiled)
    overrides = ["--set", "training.rounds=2", "--set", "output.progress=true"]
    proc = semfed_process(
        "train", "--config", str(config), *overrides, "--out", str(tmp_path / "run")
    )
    assert proc.returncode == 0, proc.stderr
    lines = re.split(r"[\r\n]+", proc.stderr)
    noise = [line for line in lines if re.match(r"[EWI]0000 ", line) or "cuInit" in line]
    assert not noise, proc.stderr
    assert "absl::InitializeLog" not in proc.stderr
    # the config leaves link.jit_compile at its default (on)
    device = r"device: (CPU \(\d+ threads\)|GPU .+); link compiled with XLA: yes"
    assert re.match(device + r" \(link\.jit_compile = true\)", lines[0]), lines[0]
    assert sum("2/2" in line for line in lines) == 1, proc.stderr  # the bar's last line, once
    assert '"final_test_acc"' in proc.stdout


def test_verbose_passes_tensorflow_log_and_the_setting_on():
    from semfed.cli import build_parser
    from semfed.runtime import VERBOSE_ENV, configure_logging, is_verbose

    assert build_parser().parse_args(["-v", "info"]).verbose
    saved = {k: os.environ.get(k) for k in (VERBOSE_ENV, "TF_CPP_MIN_LOG_LEVEL")}
    try:
        for k in saved:
            os.environ.pop(k, None)
        configure_logging(verbose=False)
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2" and not is_verbose()
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"  # the user's own setting is kept
        configure_logging(verbose=False)
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
        os.environ.pop("TF_CPP_MIN_LOG_LEVEL")
        configure_logging(verbose=True)
        assert is_verbose() and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_retracing_warning_is_dropped_only_for_per_architecture_functions():
    import logging

    from semfed.runtime import PerArchitectureTraces

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tensorflow", logging.WARNING, "x.py", 1, message, None, None)

    text = (
        "5 out of the last 9 calls to <function {} at 0x7f25c90bbe20> triggered "
        "tf.function retracing. Tracing is expensive"
    )
    keep = PerArchitectureTraces().filter
    assert not keep(record(text.format("_assign_all")))
    assert not keep(record(text.format("Evaluator._make_scores.<locals>.scores")))
    assert keep(record(text.format("my_function")))  # anyone else's: shown
    assert keep(record(text.format("train.<locals>._assign_all_and_more")))
    assert keep(record("calls to <function _assign_all at 0x1> did something else"))


def test_device_line_names_the_device_and_xla():
    from semfed.runtime import device_line, start_tensorflow

    start_tensorflow()
    assert re.fullmatch(
        r"device: (CPU \(\d+ threads\)|GPU .+); link compiled with XLA: yes "
        r"\(link.jit_compile = true\)",
        device_line(True),
    )
    assert device_line(None).endswith("XLA: per run (the grid sets link.jit_compile)")


def test_progress_bar_draws_its_last_line_once(capsys):
    from semfed.progress import RoundProgress, progress_over

    bar = RoundProgress(3)
    for _ in range(3):
        time.sleep(0.12)  # past tqdm's 0.1 s between draws: every step would be drawn
        bar.update({"train_loss": 1.0, "round_s": 0.5, "test_acc": 0.5})
    bar.close()
    points = []
    for point in progress_over(["a", "b"], desc="points", unit="point"):
        time.sleep(0.12)
        points.append(point)
    assert points == ["a", "b"]
    err = re.split(r"[\r\n]+", capsys.readouterr().err)
    assert sum("3/3" in line for line in err) == 1
    assert sum("2/2" in line for line in err) == 1


def test_help_mentions_verbose(capsys):
    from semfed.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--verbose" in capsys.readouterr().out


def test_info_reports_versions_devices_probes_and_data_without_the_network(
    tmp_path, monkeypatch, capsys
):
    import socket

    from semfed.cli import main

    def no_network(*args, **kwargs):
        raise OSError("semfed info must work offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    copy = tmp_path / "cifar.tar.gz"
    copy.write_bytes(b"not read by semfed info")
    monkeypatch.setenv("SEMFED_DATA", str(copy))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "old.npz").write_bytes(b"x" * 2048)
    assert main(["info", "--set", f"data.cache_dir={cache}"]) == 0
    out = capsys.readouterr().out
    keys = {line.split(":")[0].strip() for line in out.splitlines()}
    expected = {"semfed", "python", "tensorflow", "keras", "sionna", "numpy"}
    expected |= {"tensorflow-datasets", "devices", "xla", "bfloat16", "data", "source"}
    assert expected | {"SEMFED_DATA", "data.path", "cache", "cache folder", "cache size"} <= keys
    assert re.search(r"^  xla: +(yes|no)", out, re.M)
    assert re.search(r"^  bfloat16: +(yes|no)", out, re.M)
    assert re.search(r"^  devices: +.*CPU:0", out, re.M)
    assert f"local copy {copy} (from SEMFED_DATA)" in out
    assert "none yet at" in out  # no cache for this copy yet
    assert re.search(
        rf"^  cache folder: +{re.escape(str(cache))} \(from data.cache_dir\)", out, re.M
    )
    assert "2.0 KiB in 1 file" in out

    monkeypatch.delenv("SEMFED_DATA")
    assert main(["info", "--set", f"data.cache_dir={cache}"]) == 0
    assert "tensorflow-datasets 'cifar10', downloaded when online" in capsys.readouterr().out
