"""Each loss against values worked out by hand on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from semfed.losses import (
    class_feature_sums,
    local_centroids,
    regularized_task_loss,
    scg_loss_infonce,
    scg_loss_printed,
)

LOCAL = tf.constant([[1.0, 0.0], [0.0, 1.0]])
CLASSES = tf.constant([0, 2])
GLOBAL = tf.constant([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_local_centroids_eq7():
    f = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    sums, counts = class_feature_sums(f, tf.constant([0, 0, 2]), 3)
    np.testing.assert_allclose(sums.numpy(), [[4, 6], [0, 0], [5, 6]])
    np.testing.assert_allclose(counts.numpy(), [2, 0, 1])
    cent, cls = local_centroids(sums, counts)
    np.testing.assert_allclose(cent.numpy(), [[2, 3], [5, 6]])
    assert cls.numpy().tolist() == [0, 2]


def test_scg_loss_printed_eq9():
    # pair (f=(1,0), c=0): dots (1, 0, 1): log(e^0 + e^1) - 1 = log(1 + e) - 1
    # pair (f=(0,1), c=2): dots (0, 1, 1): log(e^0 + e^1) - 1, the same
    expected = 2 * (math.log(1 + math.e) - 1)
    assert expected == pytest.approx(0.6265234, abs=1e-6)
    got = scg_loss_printed(LOCAL, CLASSES, GLOBAL)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_scg_loss_printed_is_unbounded_below():
    # F^0 aligned with f_bar (class 0), the negatives not: the loss is about -s
    # when the centroids are scaled by s, so it falls without limit.
    aligned = tf.constant([[1.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    values = [float(scg_loss_printed(LOCAL, CLASSES, s * aligned)) for s in (1, 10, 100)]
    assert values[0] > values[1] > values[2] < -50


def test_scg_loss_infonce_dot_product():
    # tau = 1, no normalisation: -log(e^1 / (e^1 + e^0 + e^1)) = log(2e + 1) - 1 for both pairs
    expected = math.log(2 * math.e + 1) - 1
    assert expected == pytest.approx(0.861995, abs=1e-6)
    got = scg_loss_infonce(LOCAL, CLASSES, GLOBAL, temperature=1.0, normalize=False)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_scg_loss_infonce_cosine_and_bounded():
    # normalised F = ((1,0), (0,1), (r,r)) with r = 1/sqrt(2); tau = 0.5
    # pair 1: logits (2, 0, 2r) -> log(e^2 + 1 + e^(2r)) - 2
    # pair 2: f=(0,1), c=2: logits (0, 2, 2r) -> log(1 + e^2 + e^(2r)) - 2r
    r = 1 / math.sqrt(2)
    p1 = math.log(math.exp(2) + 1 + math.exp(2 * r)) - 2
    p2 = math.log(1 + math.exp(2) + math.exp(2 * r)) - 2 * r
    got = scg_loss_infonce(LOCAL, CLASSES, GLOBAL, temperature=0.5, normalize=True)
    assert float(got) == pytest.approx((p1 + p2) / 2, rel=1e-6)
    # bounded: no scaling of the centroids takes it below zero
    for s in (1.0, 10.0, 1e3):
        assert float(scg_loss_infonce(LOCAL, CLASSES, s * GLOBAL)) >= 0.0


@pytest.mark.parametrize(("reduction", "reg"), [("sum", 1.0), ("mean", 0.5)])
def test_regularized_task_loss_eq10(reduction, reg):
    logits = tf.constant([[2.0, 0.0], [0.0, 0.0]])
    labels = tf.constant([0, 1])
    feats = tf.constant([[1.0, 1.0], [0.0, 2.0]])
    cents = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    # CE: sample 1 log(e^2 + 1) - 2, sample 2 log 2; distances: (0,1) and (0,1)
    ce = ((math.log(math.exp(2) + 1) - 2) + math.log(2)) / 2
    total, ce_got, reg_got = regularized_task_loss(logits, labels, feats, cents, 0.5, reduction)
    assert float(ce_got) == pytest.approx(ce, rel=1e-6)
    assert float(reg_got) == pytest.approx(reg, rel=1e-6)
    assert float(total) == pytest.approx(ce + 0.5 * reg, rel=1e-6)
