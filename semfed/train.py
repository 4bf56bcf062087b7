"""A training run: set-up, the rounds, evaluation, result files, checkpoints, resume.

The same run loop serves every algorithm (``algorithm.name``, see
:mod:`semfed.algorithms`).

Files in the run directory:
  config.toml      the resolved config (with link.topology: the [drop] section,
                   each client's place and link-budget SNRs)
  metrics.jsonl    one JSON object per evaluated round (with link.topology also
                   round 0, evaluated or not, with the SNRs the clients' links use)
  summary.json     final accuracy (mean of the last evaluations) under every
                   protocol, rounds, wall time, communication totals, config
                   hash, partition fingerprint
  checkpoints/     the latest checkpoint (models, optimizers, generator states)
  tb/              TensorBoard events
  features.npz     received test features with labels (``dump_features``)
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from semfed.cell import resolve_drop
from semfed.config import ConfigError, RunConfig, load_config
from semfed.evaluation import PROTOCOLS
from semfed.io import write_json_atomic, write_text_atomic
from semfed.streams import generator, set_sionna_state, sionna_state, sionna_stream

# Keys that may change when a run is resumed (more rounds, other evaluation).
RESUMABLE_CHANGES = {"training.rounds", "training.checkpoint_every", "evaluation", "output"}

# Per-round communication of every algorithm (docs/algorithms.md, "Communication accounting").
COMMUNICATION_KEYS = (
    "uplink_symbols",
    "downlink_symbols",
    "param_bits",
    "uplink_slots",
    "downlink_slots",
    "airtime_ms",
)


class RunDirError(ConfigError):
    """The output directory holds something this run must not overwrite."""


def config_differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys (``link.channel``) whose values differ between two config dicts."""
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}")
    return out


def blocking_differences(diff: list[str]) -> list[str]:
    """The keys of ``diff`` (from :func:`config_differences`) that a resume may not change."""
    return [
        d for d in diff if d not in RESUMABLE_CHANGES and d.split(".")[0] not in RESUMABLE_CHANGES
    ]


def _check_run_dir(out: Path, config: RunConfig, resume: bool, overwrite: bool) -> bool:
    """Decide whether to resume; refuse to mix a different run into ``out``."""
    old_path = out / "config.toml"
    if not old_path.exists() or overwrite:
        if overwrite and out.exists():
            for name in ("metrics.jsonl", "summary.json", "features.npz"):
                (out / name).unlink(missing_ok=True)
            import shutil

            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            shutil.rmtree(out / "tb", ignore_errors=True)
        return False
    old = load_config(old_path)
    diff = config_differences(old.to_dict(), config.to_dict())
    if not resume:
        what = "a different config (" + ", ".join(diff) + ")" if diff else "a run"
        raise RunDirError(
            f"{out} already holds {what}; use --resume to continue it or --overwrite to start over"
        )
    blocking = blocking_differences(diff)
    if blocking:
        raise RunDirError(
            f"cannot resume {out}: its config differs in {', '.join(blocking)} "
            "(only rounds, checkpoint_every, evaluation and output may change); use --overwrite"
        )
    return True


def _seed_everything(seed: int) -> None:
    """Initial weights from the run's ``init`` stream, Sionna's generators (the
    training channel draws) from its ``training`` stream (:mod:`semfed.streams`)."""
    import keras
    import tensorflow as tf

    from phy.seeding import set_seed
    from semfed.streams import stream_seed

    keras.utils.set_random_seed(stream_seed(seed, "init") % 2**32)
    set_seed(stream_seed(seed, "training"))
    tf.config.experimental.enable_op_determinism()


def build_federation(config: RunConfig, *, ideal_link: bool = False):
    """Seed everything, load the data, partition it, build the clients, the radio and
    the algorithm of ``config``; returns (the algorithm, with its ``clients`` and
    ``radio``; the partition)."""
    from semfed.algorithms import build_algorithm
    from semfed.data import load_dataset
    from semfed.federation import build_clients
    from semfed.partition import make_partition
    from semfed.radio import RadioLinks, measured_mcs_table

    if config.drop.is_empty:
        config = resolve_drop(config)
    _seed_everything(config.training.seed)
    data = load_dataset(config.data, progress=config.output.progress)
    partition = make_partition(data.y_train, data.y_test, data.num_classes, config.partition)
    clients = build_clients(config, data, partition)
    radio = RadioLinks(
        config.link,
        config.model.feature_dim,
        config.uplink_snrs(),
        config.downlink_snrs(),
        ideal=ideal_link,
        mcs_table=lambda direction: measured_mcs_table(
            config.link, direction, config.data.cache_dir
        )[0],
    )
    return build_algorithm(config, clients, radio, data.num_classes), partition


def link_choice(radio, batch_size: int) -> dict[str, Any]:
    """Each client's MCS per digital direction and symbols per sample per direction
    (``uplink_symbols_per_sample_by_client``, ...): recorded once per run, in the
    first metrics record and the summary, so a run with ``link.mcs = "auto"`` is
    auditable."""
    out: dict[str, Any] = dict(radio.mcs_record())
    k = int(radio.uplink_snr_db.shape[0])
    for d in ("uplink", "downlink"):
        out[f"{d}_symbols_per_sample_by_client"] = [
            radio.channel_uses(d, batch_size, i) / batch_size for i in range(k)
        ]
    return out


def run_training(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    dump_features: bool = False,
    ideal_link: bool = False,
) -> dict[str, Any]:
    """Train ``config.algorithm.name`` as ``config`` says, writing results to ``out``.

    Returns the summary (also written to ``out/summary.json``).
    """
    out = Path(out)
    # The cell drop (link.topology) belongs to the resolved config: drawn (or checked
    # against a recorded one) before anything is compared or written.
    config = resolve_drop(config)
    resuming = _check_run_dir(out, config, resume, overwrite)
    out.mkdir(parents=True, exist_ok=True)

    import tensorflow as tf

    from semfed.algorithms import TrainingDiverged
    from semfed.checkpoint import save_checkpoint
    from semfed.progress import RoundProgress

    t_start = time.time()
    algorithm, partition = build_federation(config, ideal_link=ideal_link)
    clients = algorithm.clients
    evaluator = algorithm.make_evaluator(config.evaluation.batch_size)
    rng = generator(config.training.seed, "training")  # the batch schedule
    eval_snrs = _evaluation_snrs(config)
    choice = link_choice(algorithm.radio, config.training.batch_size)

    ckpt_dir = out / "checkpoints"
    records: list[dict[str, Any]] = []
    start = 0
    wall_before = 0.0
    # Running totals over every round, evaluated or not; checkpointed for --resume.
    totals = {f"total_{key}": 0 for key in COMMUNICATION_KEYS}
    if resuming and _checkpoint_to_resume(out, ckpt_dir):
        meta = _load_for_resume(out, ckpt_dir, algorithm, rng)
        start = meta["round"] + 1
        wall_before = meta.get("wall_s", 0.0)
        totals.update(meta.get("communication", {}))
        records = [r for r in _read_metrics(out) if r["round"] <= meta["round"]]
    write_text_atomic(out / "config.toml", config.to_toml())
    write_text_atomic(out / "metrics.jsonl", _jsonl(records))

    writer = tf.summary.create_file_writer(str(out / "tb")) if config.output.tensorboard else None
    progress = RoundProgress(config.training.rounds, start, enabled=config.output.progress)
    t_run = time.time()
    last_round = start - 1
    try:
        for t in range(start, config.training.rounds):
            t0 = time.time()
            algorithm.radio.reset_counts()
            try:
                stats = algorithm.run_round(t, rng)
            except TrainingDiverged:
                # Mid-round state (the bad update itself was not applied); not for --resume.
                save_checkpoint(
                    out / "diverged",
                    t - 1,
                    algorithm.models(),
                    algorithm.optimizers(),
                    rng,
                    {"partial_round": t},
                )
                raise
            record: dict[str, Any] = {
                "round": t,
                "algorithm": config.algorithm.name,
                **asdict(stats),
                # Code blocks of the round's training traffic (digital directions only).
                **algorithm.radio.block_record(),
            }
            for key in COMMUNICATION_KEYS:
                totals[f"total_{key}"] += record[key]
            record.update(totals)
            # The cell drop's SNRs, once: what every client's links use all run long.
            drop_record = t == 0 and config.link.has_topology
            if drop_record:
                record["uplink_snr_db_per_client"] = list(config.uplink_snrs())
                record["downlink_snr_db_per_client"] = list(config.downlink_snrs())
            last = t == config.training.rounds - 1
            if (t + 1) % config.evaluation.every == 0 or last:
                record.update(_evaluate(evaluator, eval_snrs, config, t))
            record["round_s"] = time.time() - t0
            record["elapsed_s"] = wall_before + time.time() - t_run
            if "test_acc" in record or drop_record:
                if not records:
                    record.update(choice)
                records.append(record)
                write_text_atomic(out / "metrics.jsonl", _jsonl(records))
            if writer is not None:
                with writer.as_default(step=t):
                    for key, value in record.items():
                        if isinstance(value, int | float) and key != "round":
                            tf.summary.scalar(key, value)
            if (t + 1) % config.training.checkpoint_every == 0 or last:
                save_checkpoint(
                    ckpt_dir,
                    t,
                    algorithm.models(),
                    algorithm.optimizers(),
                    rng,
                    {"wall_s": record["elapsed_s"], "communication": dict(totals)},
                )
            progress.update(record)
            last_round = t
    finally:
        progress.close()
        if writer is not None:
            writer.close()

    scores: dict[str, float] = {}
    if dump_features:
        with _stream(config.training.seed, "feature_dump", last_round):
            scores = _dump_features(out / "features.npz", evaluator, clients, eval_snrs[0][1])
    summary = {"algorithm": config.algorithm.name, **final_accuracies(records, config.evaluation)}
    summary.update(scores)
    summary.update(
        {
            "rounds": last_round + 1,
            **totals,
            "wall_s": wall_before + time.time() - t_run,
            "setup_s": t_run - t_start,
            "config_hash": config.hash(),
            "partition_fingerprint": partition.fingerprint(),
            **choice,
        }
    )
    write_json_atomic(out / "summary.json", _finite_or_none(summary))
    return summary


def _checkpoint_to_resume(out: Path, ckpt_dir: Path) -> bool:
    """Whether ``--resume`` continues from a checkpoint (True) or starts at round 0.

    A run killed before its first checkpoint has no ``checkpoints/`` folder; it
    starts again from round 0 (the same seed gives the same rounds again). A
    finished run without its checkpoint, or a ``checkpoints/`` folder without
    ``latest.json``, is refused: starting over would silently replace results.
    """
    if not ckpt_dir.exists():
        if (out / "summary.json").exists():
            raise RunDirError(
                f"cannot resume {out}: it holds a finished run (summary.json) but no checkpoint "
                f"({ckpt_dir} is missing); use --overwrite to start over"
            )
        return False
    from semfed.checkpoint import has_checkpoint

    if not has_checkpoint(ckpt_dir):
        raise RunDirError(
            f"cannot resume {out}: {ckpt_dir / 'latest.json'} is missing, so the checkpoint "
            "cannot be trusted; use --overwrite to start over"
        )
    return True


def _load_for_resume(out: Path, ckpt_dir: Path, algorithm, rng) -> dict[str, Any]:
    """The latest checkpoint, loaded into ``algorithm`` and ``rng``, or a
    :class:`RunDirError` naming what is unreadable (nothing in ``out`` is written)."""
    import zipfile

    from semfed.checkpoint import load_checkpoint

    try:
        return load_checkpoint(ckpt_dir, algorithm.models(), algorithm.optimizers(), rng)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunDirError(
            f"cannot resume {out}: its checkpoint in {ckpt_dir} is unreadable or does not fit "
            f"this run ({type(err).__name__}: {reason}); use --overwrite to start over"
        ) from None


def _evaluation_snrs(config: RunConfig) -> list[tuple[str, list[float]]]:
    """(label, per-client SNRs) pairs; the first is reported as ``test_acc``."""
    k = config.partition.num_clients
    snr = config.evaluation.snr_db
    if snr is None:
        return [("uplink", list(config.uplink_snrs()))]
    values = snr if isinstance(snr, tuple) else (snr,)
    return [(f"{v:g}", [v] * k) for v in values]


def final_accuracies(records: list[dict[str, Any]], evaluation) -> dict[str, Any]:
    """The summary's accuracies from the evaluated rounds' records.

    ``final_test_acc_<protocol>``: the mean over the last ``evaluation.final_window``
    evaluations (fewer if the run has fewer), so the headline figure selects
    nothing on the test set; ``final_test_acc`` is the configured protocol's.
    ``oracle_best_test_acc_<protocol>``: the best evaluated round, which *is*
    selected on the test set (an optimistic bound, never a headline figure).
    ``final_test_acc[_<protocol>]_by_snr``: the window mean at each evaluation SNR.
    """
    # Evaluated rounds only (a cell drop's round 0 is written unevaluated).
    records = [r for r in records if any(key.startswith("test_acc") for key in r)]
    window = records[-evaluation.final_window :]
    out: dict[str, Any] = {"final_window": len(window), "protocol": evaluation.protocol}

    def mean(values: list[Any]) -> float | None:
        vals = [v for v in values if v is not None and not math.isnan(v)]
        return float(np.mean(vals)) if vals else None

    for p in PROTOCOLS:
        key = f"test_acc_{p}"
        out[f"final_{key}"] = mean([r.get(key) for r in window]) if window else None
        every = [r[key] for r in records if r.get(key) is not None and not math.isnan(r[key])]
        out[f"oracle_best_{key}"] = max(every) if every else None
    out["final_test_acc"] = out[f"final_test_acc_{evaluation.protocol}"]
    out["oracle_best_test_acc"] = out[f"oracle_best_test_acc_{evaluation.protocol}"]
    for p in (*PROTOCOLS, None):
        key = "test_acc_by_snr" if p is None else f"test_acc_{p}_by_snr"
        if window and key in window[-1]:
            out[f"final_{key}"] = {
                label: mean([(r.get(key) or {}).get(label) for r in window])
                for label in window[-1][key]
            }
    return out


class _stream:
    """Within the block, Sionna's TensorFlow generator draws from stream ``tag`` of
    the run; the training stream's state is put back afterwards, so what is done
    inside (evaluation, feature dumps) never changes training."""

    def __init__(self, seed: int, tag: str, round_index: int) -> None:
        self.args = (seed, tag, round_index)

    def __enter__(self) -> None:
        self._saved = sionna_state()
        sionna_stream(*self.args)

    def __exit__(self, *exc: object) -> None:
        set_sionna_state(self._saved)


def _evaluate(evaluator, eval_snrs, config: RunConfig, round_index: int) -> dict[str, Any]:
    """Every protocol's accuracy (mean over clients, per client, by evaluation SNR),
    and the configured protocol's under the plain names ``test_acc`` & co.

    The channel draws of evaluation come from the run's evaluation stream of this
    round, so the evaluation schedule and SNRs never change training (and may
    change on resume).
    """
    with _stream(config.training.seed, "evaluation", round_index):
        return _evaluate_all(evaluator, eval_snrs, config)


def _evaluate_all(evaluator, eval_snrs, config: RunConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_snr: dict[str, dict[str, float | None]] = {}
    for i, (label, snrs) in enumerate(eval_snrs):
        for key, accs in evaluator.evaluate(snrs).items():
            finite = [a for a in accs if not math.isnan(a)]
            mean = float(np.mean(finite)) if finite else float("nan")
            if i == 0:
                out[key] = mean
                out[f"{key}_per_client"] = accs
            by_snr.setdefault(key, {})[label] = mean
    if len(eval_snrs) > 1 or config.evaluation.snr_db is not None:
        for key, values in by_snr.items():
            out[f"{key}_by_snr"] = values
    chosen = f"test_acc_{config.evaluation.protocol}"
    for suffix in ("", "_per_client", "_by_snr"):
        if chosen + suffix in out:
            out["test_acc" + suffix] = out[chosen + suffix]
    return out


def _finite_or_none(value: Any) -> Any:
    """NaN and Inf become null: strict JSON readers (jq, JavaScript) reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    return value


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(_finite_or_none(r)) + "\n" for r in records)


def _read_metrics(out: Path) -> list[dict[str, Any]]:
    path = out / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _dump_features(path: Path, evaluator, clients, snrs: list[float]) -> dict[str, float]:
    """Write the received test features; returns their cluster scores by class."""
    from semfed.clustering import cluster_scores

    feats, labels, owner = [], [], []
    for c, snr in zip(clients, snrs, strict=True):
        if c.y_test.size == 0:
            continue
        feats.append(evaluator.received_features(c, snr))
        labels.append(c.y_test)
        owner.append(np.full(c.y_test.size, c.id, np.int32))
    tmp = path.with_name(".features.tmp.npz")
    features, labels = np.concatenate(feats), np.concatenate(labels)
    np.savez(
        tmp,
        features=features,
        labels=labels,
        client=np.concatenate(owner),
        snr_db=np.array(snrs, np.float32),
    )
    tmp.replace(path)
    return cluster_scores(features, labels)


__all__ = ["RunDirError", "blocking_differences", "config_differences", "run_training"]
