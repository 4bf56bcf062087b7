"""Non-IID partitions of a labelled dataset among K clients.

Two schemes (see :class:`semfed.config.PartitionConfig`):

* m-way q-shot (the paper's): client k owns m_k distinct random classes and q_k
  training samples of each; no training sample is given to two clients.
* Dirichlet(alpha) label skew: each class is split among the clients with
  proportions drawn from Dirichlet(alpha, ..., alpha).

Each client's test set holds ``test_shots`` samples of every class it owns,
drawn from the test split (test samples may be shared between clients, as in
FedProto's evaluation). Every draw comes from one ``numpy`` generator seeded by
``PartitionConfig.seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semfed.config import PartitionConfig
from semfed.errors import PartitionError


@dataclass(frozen=True)
class ClientSplit:
    """One client's share: indices into the dataset's train and test splits."""

    id: int
    classes: tuple[int, ...]
    train_indices: np.ndarray  # int64 [D_k]
    test_indices: np.ndarray  # int64 [n * len(classes)]

    @property
    def num_train(self) -> int:
        return int(self.train_indices.size)


@dataclass(frozen=True)
class Partition:
    clients: tuple[ClientSplit, ...]
    num_classes: int

    @property
    def num_clients(self) -> int:
        return len(self.clients)

    def weights(self) -> np.ndarray:
        """D_k / D for every client (eq. 5), float64 [K]."""
        sizes = np.array([c.num_train for c in self.clients], dtype=np.float64)
        return sizes / sizes.sum()

    def summary(self, y_train: np.ndarray, y_test: np.ndarray) -> dict:
        """Plain data: ``{"clients": [{"id", "classes", "train_counts", "test_counts"}]}``."""
        out = []
        for c in self.clients:
            out.append(
                {
                    "id": c.id,
                    "classes": [int(k) for k in c.classes],
                    "train_counts": _counts(y_train[c.train_indices]),
                    "test_counts": _counts(y_test[c.test_indices]),
                }
            )
        return {"clients": out}

    def fingerprint(self) -> str:
        """A hash of every index, to check that runs share one split."""
        import hashlib

        h = hashlib.sha256()
        for c in self.clients:
            h.update(np.asarray(c.train_indices, dtype=np.int64).tobytes())
            h.update(b"|")
            h.update(np.asarray(c.test_indices, dtype=np.int64).tobytes())
            h.update(b"#")
        return h.hexdigest()[:16]


def _counts(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(int(v)): int(n) for v, n in zip(values, counts, strict=True)}


def _class_pools(
    labels: np.ndarray, num_classes: int, rng: np.random.Generator
) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]


def _mway_sizes(
    cfg: PartitionConfig, num_classes: int, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    """Per-client m_k and q_k (the spread draws them uniformly around m and q)."""
    k = cfg.num_clients
    if cfg.ways > num_classes:
        raise PartitionError(
            f"partition.ways = {cfg.ways} classes per client, but the dataset has only "
            f"{num_classes} classes"
        )
    lo_m, hi_m = max(1, cfg.ways - cfg.ways_spread), min(num_classes, cfg.ways + cfg.ways_spread)
    ways = rng.integers(lo_m, hi_m + 1, size=k).tolist()
    if cfg.total is not None:
        shots = [cfg.total // (k * m) for m in ways]
        if min(shots) < 1:
            raise PartitionError(
                f"partition.total = {cfg.total} is too small: q = total // (K * m) = "
                f"{cfg.total} // ({k} * {max(ways)}) = 0"
            )
    else:
        lo_q, hi_q = cfg.shots - cfg.shots_spread, cfg.shots + cfg.shots_spread
        shots = rng.integers(lo_q, hi_q + 1, size=k).tolist()
    return ways, shots


def _test_indices(
    classes: Sequence[int],
    test_pools: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    picked = []
    for c in classes:
        pool = test_pools[c]
        if n > pool.size:
            raise PartitionError(
                f"partition.test_shots = {n} test samples of class {c} per client, but the "
                f"test split has only {pool.size} of that class"
            )
        picked.append(rng.choice(pool, size=n, replace=False))
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.zeros(0, np.int64)


def partition_mway(
    y_train: np.ndarray, y_test: np.ndarray, num_classes: int, cfg: PartitionConfig
) -> Partition:
    """m-way q-shot split: disjoint training shots, random classes per client."""
    rng = np.random.default_rng(cfg.seed)
    ways, shots = _mway_sizes(cfg, num_classes, rng)
    classes = [np.sort(rng.choice(num_classes, size=m, replace=False)) for m in ways]

    demand = np.zeros(num_classes, dtype=np.int64)
    owners = np.zeros(num_classes, dtype=np.int64)
    for cls, q in zip(classes, shots, strict=True):
        demand[cls] += q
        owners[cls] += 1
    available = np.bincount(y_train, minlength=num_classes)
    short = np.flatnonzero(demand > available)
    if short.size:
        c = int(short[0])
        raise PartitionError(
            f"not enough training samples for disjoint shots: class {c} is owned by "
            f"{owners[c]} clients needing {demand[c]} samples in all (q = {cfg.shots}"
            f"{f' +/- {cfg.shots_spread}' if cfg.shots_spread else ''}), but the training "
            f"split has {available[c]}; lower partition.shots or partition.num_clients"
        )

    train_pools = _class_pools(y_train, num_classes, rng)
    test_pools = _class_pools(y_test, num_classes, rng)
    taken = np.zeros(num_classes, dtype=np.int64)
    clients = []
    for k, (cls, q) in enumerate(zip(classes, shots, strict=True)):
        idx = []
        for c in cls:
            idx.append(train_pools[c][taken[c] : taken[c] + q])
            taken[c] += q
        clients.append(
            ClientSplit(
                id=k,
                classes=tuple(int(c) for c in cls),
                train_indices=np.sort(np.concatenate(idx)).astype(np.int64),
                test_indices=_test_indices(cls, test_pools, cfg.test_shots, rng),
            )
        )
    return Partition(tuple(clients), num_classes)


def partition_dirichlet(
    y_train: np.ndarray, y_test: np.ndarray, num_classes: int, cfg: PartitionConfig
) -> Partition:
    """Dirichlet(alpha) label skew over ``cfg.total`` training samples (all when unset).

    Draws are repeated (up to 100 times) until every client has at least one sample.
    """
    rng = np.random.default_rng(cfg.seed)
    k = cfg.num_clients
    pools = _class_pools(y_train, num_classes, rng)
    if cfg.total is not None:
        n_all = sum(p.size for p in pools)
        if cfg.total > n_all:
            raise PartitionError(
                f"partition.total = {cfg.total} exceeds the {n_all} training samples"
            )
        # Keep the class balance of the split when taking a subset.
        keep = rng.permutation(np.concatenate(pools))[: cfg.total]
        keep_set = np.zeros(y_train.size, dtype=bool)
        keep_set[keep] = True
        pools = [p[keep_set[p]] for p in pools]
    if sum(p.size for p in pools) < k:
        raise PartitionError(
            f"{sum(p.size for p in pools)} training samples cannot give each of "
            f"partition.num_clients = {k} clients one sample"
        )
    for _ in range(100):
        shares: list[list[np.ndarray]] = [[] for _ in range(k)]
        for pool in pools:
            props = rng.dirichlet(np.full(k, cfg.alpha))
            cuts = (np.cumsum(props)[:-1] * pool.size).astype(np.int64)
            for j, part in enumerate(np.split(pool, cuts)):
                shares[j].append(part)
        sizes = [sum(p.size for p in s) for s in shares]
        if min(sizes) > 0:
            break
    else:
        raise PartitionError(
            f"partition.alpha = {cfg.alpha} left a client with no data in 100 draws; "
            "raise alpha or total, or lower num_clients"
        )
    test_pools = _class_pools(y_test, num_classes, rng)
    clients = []
    for j, s in enumerate(shares):
        idx = np.sort(np.concatenate(s)).astype(np.int64)
        cls = tuple(int(c) for c in np.unique(y_train[idx]))
        clients.append(
            ClientSplit(j, cls, idx, _test_indices(cls, test_pools, cfg.test_shots, rng))
        )
    return Partition(tuple(clients), num_classes)


def make_partition(
    y_train: np.ndarray, y_test: np.ndarray, num_classes: int, cfg: PartitionConfig
) -> Partition:
    """Split the dataset as ``cfg`` says. Labels are int arrays [N] and [M]."""
    y_train = np.asarray(y_train, dtype=np.int64)
    y_test = np.asarray(y_test, dtype=np.int64)
    if cfg.scheme == "mway":
        return partition_mway(y_train, y_test, num_classes, cfg)
    return partition_dirichlet(y_train, y_test, num_classes, cfg)


def format_table(summary: dict, class_names: Sequence[str] | None = None) -> str:
    """Per-client table: classes, train and test samples per class."""
    rows = [("client", "classes", "train per class", "test per class", "D_k")]
    for c in summary["clients"]:
        names = [class_names[k] if class_names else str(k) for k in c["classes"]]
        train = [str(c["train_counts"].get(str(k), 0)) for k in c["classes"]]
        test = [str(c["test_counts"].get(str(k), 0)) for k in c["classes"]]
        total = sum(c["train_counts"].values())
        rows.append((str(c["id"]), " ".join(names), " ".join(train), " ".join(test), str(total)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
