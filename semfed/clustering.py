"""How well received features cluster by class: the number behind Fig. 4's picture.

Two scores of the received (noisy) test features against their class labels:

* ``feature_silhouette``: the mean silhouette coefficient (Euclidean), in
  [-1, 1]; higher means tighter, better separated classes.
* ``feature_knn_acc``: leave-one-out k-nearest-neighbour accuracy (k = 5,
  Euclidean, majority vote, ties to the nearest): the share of points whose
  neighbours mostly share their class.

Both are computed on at most ``max_points`` points drawn with a fixed seed, so
the same dump gives the same numbers.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 2000
K = 5


def _subsample(features: np.ndarray, labels: np.ndarray, max_points: int):
    if len(labels) <= max_points:
        return features, labels
    keep = np.sort(np.random.default_rng(0).choice(len(labels), max_points, replace=False))
    return features[keep], labels[keep]


def knn_accuracy(features: np.ndarray, labels: np.ndarray, k: int = K) -> float:
    """Leave-one-out k-NN accuracy; a vote tie goes to the class of the nearer point."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(features)
    _, idx = nn.kneighbors(features)
    hits = 0
    for i, row in enumerate(idx):
        neigh = [j for j in row if j != i][:k]
        votes: dict[int, int] = {}
        for j in neigh:
            votes[labels[j]] = votes.get(labels[j], 0) + 1
        best = max(votes.values())
        winner = next(labels[j] for j in neigh if votes[labels[j]] == best)
        hits += int(winner == labels[i])
    return hits / len(labels)


def cluster_scores(
    features: np.ndarray, labels: np.ndarray, max_points: int = MAX_POINTS
) -> dict[str, float]:
    """``feature_silhouette`` and ``feature_knn_acc`` of features [n, d] with labels [n]."""
    from sklearn.metrics import silhouette_score

    features = np.asarray(features, np.float64).reshape(len(labels), -1)
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2 or len(labels) <= K + 1:
        raise ValueError("cluster scores need at least two classes and more than k + 1 points")
    features, labels = _subsample(features, labels, max_points)
    return {
        "feature_silhouette": float(silhouette_score(features, labels)),
        "feature_knn_acc": knn_accuracy(features, labels),
    }


__all__ = ["cluster_scores", "knn_accuracy"]
