"""Checkpoints: every model weight, optimizer slot and random-generator state of a run.

One ``.npz`` of arrays plus a JSON of generator states, both written atomically,
so ``--resume`` continues bit for bit where the run stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np

from semfed.io import write_json_atomic


def _sionna_config():
    from sionna.phy import config

    return config


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """Every generator a run draws from: the run's own and Sionna's three."""
    cfg = _sionna_config()
    return {
        "run": rng.bit_generator.state,
        "sionna_np": cfg.np_rng.bit_generator.state,
        "sionna_py": repr(cfg.py_rng.getstate()),
        "sionna_tf": cfg.tf_rng.state.numpy().tolist(),
    }


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    import ast

    cfg = _sionna_config()
    rng.bit_generator.state = state["run"]
    cfg.np_rng.bit_generator.state = state["sionna_np"]
    cfg.py_rng.setstate(ast.literal_eval(state["sionna_py"]))
    cfg.tf_rng.state.assign(np.array(state["sionna_tf"], dtype=np.int64))


def save_checkpoint(
    path: Path,
    round_index: int,
    models: dict[str, keras.Model],
    optimizers: dict[str, keras.optimizers.Optimizer],
    rng: np.random.Generator,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint under the folder ``path``.

    The state goes to ``path/round-NNNNNN/`` first; only then does ``path/latest.json``
    point at it (an atomic rename), and older rounds are removed. A kill at any
    moment leaves the previous checkpoint usable.
    """
    root = path
    path = root / f"round-{round_index:06d}"
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for name, model in models.items():
        for i, w in enumerate(model.weights):
            arrays[f"model/{name}/{i}"] = np.asarray(w.numpy())
    for name, opt in optimizers.items():
        for i, v in enumerate(opt.variables):
            arrays[f"opt/{name}/{i}"] = np.asarray(v.numpy())
    tmp = path / f".state.{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path / "state.npz")
    meta = {"round": round_index, "rng": rng_state(rng), **(extra or {})}
    write_json_atomic(path / "state.json", meta)
    write_json_atomic(root / "latest.json", {"round": round_index, "dir": path.name})
    for old in root.glob("round-*"):
        if old.name != path.name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(
    path: Path,
    models: dict[str, keras.Model],
    optimizers: dict[str, keras.optimizers.Optimizer],
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Restore the latest checkpoint under ``path``; returns its JSON metadata."""
    path = path / json.loads((path / "latest.json").read_text())["dir"]
    meta = json.loads((path / "state.json").read_text())
    with np.load(path / "state.npz") as arrays:
        for name, model in models.items():
            for i, w in enumerate(model.weights):
                w.assign(arrays[f"model/{name}/{i}"])
        for name, opt in optimizers.items():
            for i, v in enumerate(opt.variables):
                v.assign(arrays[f"opt/{name}/{i}"])
    set_rng_state(rng, meta["rng"])
    return meta


def has_checkpoint(path: Path) -> bool:
    return (path / "latest.json").is_file()


__all__ = ["has_checkpoint", "load_checkpoint", "save_checkpoint"]
