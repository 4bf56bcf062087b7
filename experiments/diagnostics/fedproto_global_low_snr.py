"""Why FedProto's ``global`` score collapses at -5 dB (Fig. 2(b), medium scale).

Loads a finished FedProto run's last checkpoint (checkpoints are not committed:
rerun the run first, e.g. ``semfed experiment experiments/fig2b.toml --scale
medium --only link.uplink_snr_db=-5 --only algorithm.name=fedproto --seeds 1``),
receives every client's test set once through its link, as the evaluation does,
and scores nearest-centre rules on those features:

* the global prototypes over all 10 classes (the ``global`` protocol);
* the test set's own class means ("oracle" centres) over all 10 classes;
* both again over the classes the client owns only (as ``masked`` does).

It also prints the received features' power per element and the cosine between
each prototype and its class's test mean.

    python experiments/diagnostics/fedproto_global_low_snr.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from semfed.config import load_config
from semfed.evaluation import nearest_prototype
from semfed.streams import generator
from semfed.train import _load_for_resume, _stream, build_federation


def diagnose(run: Path) -> dict[str, float]:
    config = load_config(run / "config.toml")
    algorithm, _ = build_federation(config)
    rng = generator(config.training.seed, "training")
    _load_for_resume(run, run / "checkpoints", algorithm, rng)
    evaluator = algorithm.make_evaluator(config.evaluation.batch_size)
    protos, mask = (t.numpy() for t in algorithm.global_prototypes())
    feats, labels, owner = [], [], []
    with _stream(config.training.seed, "feature_dump", config.training.rounds - 1):
        for i, (c, snr) in enumerate(zip(algorithm.clients, config.uplink_snrs(), strict=True)):
            feats.append(evaluator.received_features(c, snr))
            labels.append(c.y_test)
            owner.append(np.full(c.y_test.size, i))
    f, y, who = np.concatenate(feats), np.concatenate(labels), np.concatenate(owner)
    classes = protos.shape[0]
    means = np.stack([f[y == c].mean(0) for c in range(classes)])

    def accuracy(centres: np.ndarray, own_only: bool) -> float:
        right = 0
        for i, c in enumerate(algorithm.clients):
            allowed = (mask > 0).astype(float)
            if own_only:
                owned = np.zeros(classes)
                owned[np.unique(c.y_train)] = 1
                allowed = allowed * owned
            sel = who == i
            right += int((nearest_prototype(f[sel], centres, allowed) == y[sel]).sum())
        return right / y.size

    cos = (protos * means).sum(1) / np.linalg.norm(protos, axis=1) / np.linalg.norm(means, axis=1)
    return {
        "snr_db": float(config.uplink_snrs()[0]),
        "power_per_element": float((f.astype(np.float64) ** 2).mean()),
        "cos_prototype_test_mean": float(cos.mean()),
        "prototypes_all": accuracy(protos, False),
        "test_means_all": accuracy(means, False),
        "prototypes_own": accuracy(protos, True),
        "test_means_own": accuracy(means, True),
    }


if __name__ == "__main__":
    for path in sys.argv[1:]:
        scores = diagnose(Path(path))
        print(Path(path).name, " ".join(f"{k}={v:.3f}" for k, v in scores.items()), flush=True)
