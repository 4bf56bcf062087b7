"""The paper's losses, one function per equation.

Shapes: N samples, d feature dimensions, C classes, P (client, class) pairs.
"""

from __future__ import annotations

import tensorflow as tf


def class_feature_sums(
    features: tf.Tensor, labels: tf.Tensor, num_classes: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-class sums and counts, accumulated over mini-batches for eq. 7.

    features float32 [N, d], labels int [N] -> sums float32 [C, d], counts float32 [C].
    """
    labels = tf.cast(labels, tf.int32)
    sums = tf.math.unsorted_segment_sum(features, labels, num_classes)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(labels, tf.float32), labels, num_classes)
    return sums, counts


def local_centroids(sums: tf.Tensor, counts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Eq. 7: f_bar_k^c = mean of the received features of class c on client k.

    sums float32 [C, d], counts float32 [C] -> (centroids float32 [P, d] of the
    classes present, their class indices int32 [P]).
    """
    present = tf.where(counts > 0)[:, 0]
    centroids = tf.gather(sums, present) / tf.gather(counts, present)[:, None]
    return centroids, tf.cast(present, tf.int32)


def scg_loss_printed(
    local: tf.Tensor, classes: tf.Tensor, global_centroids: tf.Tensor
) -> tf.Tensor:
    """Eq. 8-9 exactly as printed, summed over every (client, class) pair.

    L = sum_pairs [ log sum_{n != c} exp(f_bar . F^n) - f_bar . F^c ].
    Raw dot products and no positive term in the log-sum-exp make it unbounded
    below: growing centroid norms drive it to -inf.

    local float32 [P, d], classes int [P], global_centroids float32 [C, d] -> scalar.
    """
    logits = tf.matmul(local, global_centroids, transpose_b=True)  # [P, C]
    is_pos = tf.one_hot(tf.cast(classes, tf.int32), tf.shape(global_centroids)[0]) > 0
    neg = tf.reduce_logsumexp(tf.where(is_pos, -float("inf"), logits), axis=1)
    pos = tf.reduce_sum(tf.where(is_pos, logits, 0.0), axis=1)
    return tf.reduce_sum(neg - pos)


def scg_loss_infonce(
    local: tf.Tensor,
    classes: tf.Tensor,
    global_centroids: tf.Tensor,
    temperature: float = 0.5,
    normalize: bool = True,
) -> tf.Tensor:
    """Bounded InfoNCE form of eq. 9, averaged over the (client, class) pairs.

    L = mean_pairs -log( exp(s(f_bar, F^c)/tau) / sum_n exp(s(f_bar, F^n)/tau) ),
    s the cosine similarity when ``normalize`` (else the dot product). The positive
    is in the denominator, so L >= 0.

    local float32 [P, d], classes int [P], global_centroids float32 [C, d] -> scalar.
    """
    if normalize:
        local = tf.math.l2_normalize(local, axis=1)
        global_centroids = tf.math.l2_normalize(global_centroids, axis=1)
    logits = tf.matmul(local, global_centroids, transpose_b=True) / temperature
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(classes, tf.int32), logits=logits
    )
    return tf.reduce_mean(ce)


def centroid_distance(
    features: tf.Tensor, labels: tf.Tensor, global_centroids: tf.Tensor, reduction: str = "mean"
) -> tf.Tensor:
    """Per-sample ||f_hat - F^y||^2, summed (paper) or averaged (FedProto's MSE) over d.

    features float32 [N, d], labels int [N], global_centroids float32 [C, d] -> float32 [N].
    """
    target = tf.gather(global_centroids, tf.cast(labels, tf.int32))
    sq = tf.square(features - target)
    return tf.reduce_sum(sq, axis=1) if reduction == "sum" else tf.reduce_mean(sq, axis=1)


def regularized_task_loss(
    logits: tf.Tensor,
    labels: tf.Tensor,
    features: tf.Tensor,
    global_centroids: tf.Tensor,
    lam: float,
    reduction: str = "mean",
    target_mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Eq. 10: mean over the batch of CE(r, y) + lambda * ||f_hat - F^y||^2.

    logits float32 [N, C], labels int [N], features float32 [N, d] (received),
    global_centroids float32 [C, d] -> (total, cross-entropy, regularizer) scalars,
    where regularizer is the batch mean of the distance (before lambda).

    ``target_mask`` float32 [C] of 0/1 (FedProto, mean centroids): a sample whose
    class has no target yet (no client has sent one, e.g. in round 0) contributes
    0 to the regularizer; the batch mean still divides by N, as FedProto does.
    """
    labels = tf.cast(labels, tf.int32)
    ce = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    dist = centroid_distance(features, labels, global_centroids, reduction)
    if target_mask is not None:
        dist = tf.gather(target_mask, labels) * dist
    reg = tf.reduce_mean(dist)
    return ce + lam * reg, ce, reg
