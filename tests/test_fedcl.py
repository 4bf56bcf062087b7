"""FedCL (Algorithm 1): gradient path, aggregation, SCG, learning, resume, determinism."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tiny_setting import TINY_SETTING

from semfed.config import load_config
from semfed.data import load_dataset
from semfed.fedcl import FedCL, TrainingDiverged, split_learning_step, weighted_average
from semfed.federation import build_clients
from semfed.losses import regularized_task_loss
from semfed.partition import make_partition
from semfed.radio import RadioLinks, normalize_power
from semfed.train import RunDirError, _seed_everything, run_training

ROOT = Path(__file__).resolve().parents[1]

# A tiny learnable setting with heterogeneous encoders.
TINY = [*TINY_SETTING, "model.encoders=heterogeneous", "training.rounds=4"]


def tiny_config(*extra: str):
    return load_config(None, [*TINY, *extra])


@pytest.fixture(scope="module")
def federation():
    """A built (untrained) FedCL federation with an ideal link, shared by the unit tests.

    Clients of unequal size (shots 24 to 40), so that a plain mean of the decoders
    is not the D_k-weighted one."""
    cfg = tiny_config("partition.shots_spread=8")
    _seed_everything(0)
    data = load_dataset(cfg.data, progress=False)
    part = make_partition(data.y_train, data.y_test, data.num_classes, cfg.partition)
    clients = build_clients(cfg, data, part)
    radio = RadioLinks(
        cfg.link, cfg.model.feature_dim, cfg.uplink_snrs(), cfg.downlink_snrs(), ideal=True
    )
    return cfg, clients, FedCL(cfg, clients, radio, data.num_classes)


def _end_to_end_encoder_grads(client, centroids, x, y, lam):
    with tf.GradientTape() as tape:
        f = normalize_power(client.encoder(x, training=True))
        logits = client.decoder(f, training=True)
        loss, _, _ = regularized_task_loss(logits, y, f, centroids, lam, "mean")
    return tape.gradient(loss, client.encoder.trainable_variables)


def _flat(grads):
    return np.concatenate([g.numpy().ravel() for g in grads])


def test_noiseless_link_gives_the_split_learning_update(federation):
    _cfg, clients, alg = federation
    c = clients[0]
    x, y = tf.constant(c.x_train[:16]), tf.constant(c.y_train[:16])
    cents = alg.global_centroids()
    snr = tf.constant(0.0)
    *_, enc_grads, _ = split_learning_step(
        c.encoder, c.decoder, alg.radio, x, y, cents, snr, snr, 1.0, "mean"
    )
    ref = _end_to_end_encoder_grads(c, cents, x, y, 1.0)
    np.testing.assert_allclose(_flat(enc_grads), _flat(ref), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_downlink_noise_reaches_the_encoder_update(federation):
    """A real downlink at high SNR is close to ideal; at -10 dB the update is corrupted."""
    cfg, clients, alg = federation
    c = clients[0]
    x, y = tf.constant(c.x_train[:16]), tf.constant(c.y_train[:16])
    cents = alg.global_centroids()
    ideal = RadioLinks(cfg.link, 64, (100.0,), (100.0,), ideal=True)
    ref = _flat(
        split_learning_step(
            c.encoder,
            c.decoder,
            ideal,
            x,
            y,
            cents,
            tf.constant(100.0),
            tf.constant(100.0),
            1.0,
            "mean",
        )[5]
    )
    real = RadioLinks(cfg.link, 64, (100.0,), (100.0,))

    def cosine(snr_dl):
        got = _flat(
            split_learning_step(
                c.encoder,
                c.decoder,
                real,
                x,
                y,
                cents,
                tf.constant(100.0),
                tf.constant(snr_dl),
                1.0,
                "mean",
            )[5]
        )
        return got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))

    assert cosine(60.0) > 0.999
    assert cosine(-10.0) < 0.95


def test_weighted_average_by_hand():
    a = [np.array([1.0, 2.0]), np.array([[0.0]])]
    b = [np.array([3.0, 4.0]), np.array([[4.0]])]
    out = weighted_average([a, b], np.array([0.25, 0.75]))
    np.testing.assert_allclose(out[0], [2.5, 3.5])
    np.testing.assert_allclose(out[1], [[3.0]])


@pytest.mark.slow
def test_round_averages_decoders_with_dk_over_d(federation):
    _cfg, clients, alg = federation
    stats = alg.run_round(0, np.random.default_rng(0))
    assert np.isfinite(stats.train_loss) and stats.separation > 0
    sizes = np.array([c.num_train for c in clients], float)
    assert len(set(sizes)) == len(sizes), sizes  # unequal D_k
    for i, w in enumerate(alg.decoder.get_weights()):
        expected = sum(
            s / sizes.sum() * c.decoder.get_weights()[i]
            for s, c in zip(sizes, clients, strict=False)
        )
        np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
    # the clients' decoder instances really differ before averaging
    assert not np.allclose(clients[0].decoder.get_weights()[0], clients[1].decoder.get_weights()[0])


def test_scg_loss_falls_on_fixed_centroids(federation):
    _cfg, _clients, alg = federation
    rng = np.random.default_rng(1)
    local = tf.constant(rng.standard_normal((9, 64)).astype(np.float32))
    classes = tf.constant(np.repeat(np.arange(3), 3).astype(np.int32))
    first = alg.train_scg(local, classes)
    for _ in range(20):
        last = alg.train_scg(local, classes)
    assert last < 0.8 * first


@pytest.mark.slow
def test_nan_stops_with_round_and_client(federation):
    _cfg, clients, alg = federation
    saved = clients[1].x_train
    clients[1].x_train = np.full_like(saved, np.nan)
    before = [w.copy() for w in clients[1].encoder.get_weights()]
    try:
        with pytest.raises(TrainingDiverged, match="round 7, client 1"):
            alg.run_round(7, np.random.default_rng(0))
    finally:
        clients[1].x_train = saved
    for b, a in zip(before, clients[1].encoder.get_weights(), strict=False):
        np.testing.assert_array_equal(b, a)  # the bad update was not applied


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    summary = run_training(tiny_config("training.rounds=4"), out, dump_features=True)
    return out, summary


@pytest.mark.slow
def test_tiny_run_learns_and_writes_results(full_run):
    out, summary = full_run
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4
    rec = json.loads(lines[-1])
    assert rec["test_acc"] > 0.7  # chance: 1/10 (the global decoder knows 10 classes)
    # The final accuracy is the mean over the last evaluations (all 4 here), not the last.
    accs = [json.loads(line)["test_acc"] for line in lines]
    assert summary["final_test_acc"] == pytest.approx(np.mean(accs))
    for key in (
        "round",
        "algorithm",
        "test_acc",
        "test_acc_per_client",
        "train_loss",
        "elapsed_s",
        "regularizer",
        "scg_loss",
        "separation",
    ):
        assert key in rec
    assert len(rec["test_acc_per_client"]) == 3
    assert set(json.loads((out / "summary.json").read_text())) >= {
        "final_test_acc",
        "oracle_best_test_acc",
        "final_test_acc_global",
        "final_test_acc_personal",
        "final_test_acc_masked",
        "rounds",
        "wall_s",
        "config_hash",
    }
    assert load_config(out / "config.toml") == tiny_config("training.rounds=4")
    feats = np.load(out / "features.npz")
    assert feats["features"].shape == (feats["labels"].size, 64)
    # Fig. 4's number: the dump's cluster scores, recomputed from the file.
    from semfed.clustering import cluster_scores

    scores = cluster_scores(feats["features"], feats["labels"])
    assert summary["feature_knn_acc"] == pytest.approx(scores["feature_knn_acc"])
    assert summary["feature_silhouette"] == pytest.approx(scores["feature_silhouette"])
    assert summary["feature_knn_acc"] > 0.5  # a run at 0.7+ accuracy clusters its classes


def _strip_times(path: Path):
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for r in recs:
        r.pop("elapsed_s"), r.pop("round_s")
    return recs


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(full_run, tmp_path):
    out, _ = full_run
    run_training(tiny_config("training.rounds=4"), tmp_path / "again")
    assert _strip_times(tmp_path / "again" / "metrics.jsonl") == _strip_times(out / "metrics.jsonl")


@pytest.mark.slow
def test_kill_and_resume_matches_uninterrupted_run(full_run, tmp_path):
    out, _ = full_run
    run_dir = tmp_path / "killed"
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(tiny_config("training.rounds=4").to_toml())
    cmd = [
        sys.executable,
        "-m",
        "semfed",
        "train",
        "--config",
        str(config_file),
        "--out",
        str(run_dir),
    ]
    # stderr to a file, not a pipe: nobody reads a pipe while the run goes, and
    # TensorFlow's log could fill it and block the run.
    err_file = tmp_path / "stderr.txt"
    with err_file.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if latest.exists() and json.loads(latest.read_text())["round"] >= 1:
            break
        assert proc.poll() is None, err_file.read_text()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # killed after round 2 of 4, before the run could finish
    assert json.loads(latest.read_text())["round"] < 3
    assert not (run_dir / "summary.json").exists()
    with pytest.raises(RunDirError, match="--resume"):
        run_training(tiny_config("training.rounds=4"), run_dir)
    run_training(tiny_config("training.rounds=4"), run_dir, resume=True)
    assert _strip_times(run_dir / "metrics.jsonl") == _strip_times(out / "metrics.jsonl")


@pytest.mark.slow
def test_run_dir_with_other_config_is_refused(full_run):
    out, _ = full_run
    with pytest.raises(RunDirError, match=r"model\.encoder_width"):
        run_training(tiny_config("training.rounds=4", "model.encoder_width=4"), out)
    with pytest.raises(RunDirError, match="cannot resume"):
        run_training(tiny_config("model.encoder_width=4"), out, resume=True)


def test_scg_nan_is_not_applied_and_stops_the_run(federation):
    _cfg, _clients, alg = federation
    before = [w.copy() for w in alg.scg.get_weights()]
    local = tf.constant(np.full((2, 64), np.nan, np.float32))
    with pytest.raises(TrainingDiverged, match="round 5, SCG step 0"):
        alg.train_scg(local, tf.constant([0, 1], tf.int32), 5)
    for b, a in zip(before, alg.scg.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)


@pytest.mark.slow
def test_evaluation_schedule_does_not_change_training(full_run, tmp_path):
    """Evaluation draws its channel from its own stream, so evaluating less often
    (or at other SNRs) leaves the training trajectory bit for bit the same."""
    out, _ = full_run
    run_training(
        tiny_config("training.rounds=4", "evaluation.every=2", "evaluation.snr_db=[0.0, 30.0]"),
        tmp_path / "sparse",
    )
    dense = {r["round"]: r for r in _strip_times(out / "metrics.jsonl")}
    sparse = _strip_times(tmp_path / "sparse" / "metrics.jsonl")
    assert [r["round"] for r in sparse] == [1, 3]
    for r in sparse:
        assert r["train_loss"] == dense[r["round"]]["train_loss"]
        assert set(r["test_acc_by_snr"]) == {"0", "30"}


# ---------------------------------------------------------------- what crosses which link


def _flat_weights(variables) -> np.ndarray:
    return np.concatenate([np.asarray(v).ravel() for v in variables])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _local_updates(alg) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per client: (encoder update, decoder-instance update) of one round's local passes."""
    encoders = [_flat_weights(c.encoder.trainable_weights) for c in alg.clients]
    decoder = _flat_weights(alg.decoder.trainable_weights)  # phi, where every phi_k starts
    alg.train_clients(0, np.random.default_rng(0))
    return [
        (
            _flat_weights(c.encoder.trainable_weights) - e,
            _flat_weights(c.decoder.trainable_weights) - decoder,
        )
        for c, e in zip(alg.clients, encoders, strict=True)
    ]


@pytest.mark.slow
def test_each_client_gets_its_own_uplink_and_downlink_snr(tmp_path):
    """Client 0: clean uplink, -10 dB downlink; client 1: the reverse; client 2: clean.

    The decoder instance phi_k learns from what crossed the uplink, the encoder
    from what crossed the downlink. So against a round with every link clean,
    client 0's decoder update is unchanged and its encoder's is not, client 1's
    decoder update is changed, and client 2's are both unchanged: swapped
    uplink/downlink SNRs, or per-client lists read for the wrong client, fail this.
    (SGD, so that an update points along its gradient; one mini-batch.)
    """
    from semfed.checkpoint import load_checkpoint, save_checkpoint
    from semfed.train import build_federation

    cfg = tiny_config(
        "model.encoders=homogeneous",
        "training.local_iterations=1",
        "training.client_optimizer=sgd",
        "training.server_optimizer=sgd",
        "link.uplink_snr_db=[60.0, -10.0, 60.0]",
        "link.downlink_snr_db=[-10.0, 60.0, 60.0]",
    )
    alg, _ = build_federation(cfg)
    save_checkpoint(tmp_path, 0, alg.models(), alg.optimizers(), np.random.default_rng(0))
    got = _local_updates(alg)
    load_checkpoint(tmp_path, alg.models(), alg.optimizers(), np.random.default_rng(0))
    alg.radio.uplink_snr_db = alg.radio.downlink_snr_db = tf.constant([60.0, 60.0, 60.0])
    clean = _local_updates(alg)
    cos = [
        (_cosine(enc, enc_ref), _cosine(dec, dec_ref))
        for (enc, dec), (enc_ref, dec_ref) in zip(got, clean, strict=True)
    ]
    (enc0, dec0), (_, dec1), (enc2, dec2) = cos
    assert dec0 > 0.999 and enc0 < 0.8, cos  # noisy downlink: only the encoder suffers
    assert dec1 < 0.8, cos  # noisy uplink: the decoder sees it
    assert dec2 > 0.999 and enc2 > 0.999, cos


@pytest.mark.slow
def test_encoders_learn_only_from_what_crosses_the_downlink():
    """A downlink that delivers zeros leaves every encoder as it was; the decoder learns."""
    from tiny_setting import ideal_federation

    alg = ideal_federation(tiny_config("model.encoders=homogeneous", "training.local_iterations=2"))
    # before the first (traced) step, so the compiled steps call this downlink
    alg.radio.downlink = lambda gradients, snr_db, *_, **__: tf.zeros_like(gradients)
    encoders = [_flat_weights(c.encoder.trainable_weights) for c in alg.clients]
    decoder = _flat_weights(alg.decoder.trainable_weights)
    stats = alg.run_round(0, np.random.default_rng(0))
    assert np.isfinite(stats.train_loss)
    for c, before in zip(alg.clients, encoders, strict=True):
        np.testing.assert_array_equal(_flat_weights(c.encoder.trainable_weights), before)
    assert np.abs(_flat_weights(alg.decoder.trainable_weights) - decoder).max() > 1e-4


# ---------------------------------------------------------------- the NaN guard, end to end


@pytest.mark.slow
def test_cli_names_round_and_client_and_the_diverged_state_reloads(tmp_path, monkeypatch, capsys):
    import re

    import semfed.train
    from semfed.checkpoint import load_checkpoint
    from semfed.cli import main

    build = semfed.train.build_federation
    built = {}

    def poisoned(config, **kwargs):  # client 1's images are NaN: its every step is bad
        alg, partition = build(config, **kwargs)
        # a poisoned array in place of the client's (its arrays become read-only once
        # a pass has converted them to tensors)
        alg.clients[1].x_train = np.full_like(alg.clients[1].x_train, np.nan)
        built["alg"] = alg
        return alg, partition

    monkeypatch.setattr(semfed.train, "build_federation", poisoned)
    cfg = tiny_config("model.encoders=homogeneous", "training.local_iterations=2")
    config_file = tmp_path / "tiny.toml"
    config_file.write_text(cfg.to_toml())
    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "--out", str(out)]) == 2
    device, err = capsys.readouterr().err.strip().splitlines()  # the device line, then one line
    assert device.startswith("device: ")
    assert re.fullmatch(
        r"semfed train: error: NaN or Inf in the loss or a gradient in round 0, client 1, "
        rf"mini-batch 0 \(loss = nan\); the update was not applied; last good state saved in "
        rf"{re.escape(str(out))}/diverged",
        err,
    ), err
    assert not (out / "checkpoints").exists() and not (out / "summary.json").exists()
    monkeypatch.undo()

    # The saved state reloads into a fresh federation: the state at the failure, in
    # which client 0 had trained and client 1 had taken no step.
    fresh, _ = build(cfg, ideal_link=True)
    initial_encoder_1 = [w.copy() for w in fresh.clients[1].encoder.get_weights()]
    meta = load_checkpoint(
        out / "diverged", fresh.models(), fresh.optimizers(), np.random.default_rng(1)
    )
    assert meta["partial_round"] == 0
    failed = built["alg"]
    for name, model in failed.models().items():
        for a, b in zip(model.weights, fresh.models()[name].weights, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    for name, opt in failed.optimizers().items():
        for a, b in zip(opt.variables, fresh.optimizers()[name].variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    for a, b in zip(fresh.clients[1].encoder.get_weights(), initial_encoder_1, strict=True):
        np.testing.assert_array_equal(a, b)  # no bad update was applied
    assert int(fresh.clients[0].encoder_optimizer.iterations) == 2  # client 0 trained


# ---------------------------------------------------------------- fading and estimated CSI


@pytest.mark.slow
def test_tiny_run_over_tdl_a_with_ls_csi(tmp_path):
    """Training through a fading channel with LS channel estimation, both directions."""
    cfg = tiny_config(
        "model.encoders=homogeneous", "training.rounds=2", "link.channel=tdl-a", "link.csi=ls"
    )
    summary = run_training(cfg, tmp_path / "tdl")
    records = [json.loads(x) for x in (tmp_path / "tdl" / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in records] == [0, 1]
    assert all(np.isfinite(r["train_loss"]) for r in records)
    assert records[1]["train_loss"] < records[0]["train_loss"]
    assert summary["final_test_acc"] > 0.3, summary  # chance: 1/10
    assert load_config(tmp_path / "tdl" / "config.toml").link.channel == "tdl-a"
