"""Tests of the multi-antenna base station (``phy.antennas``, ``phy.combining``).

Reference values are written here by hand, not taken from ``phy.theory``:
with N i.i.d. Rayleigh branches and perfect CSI the combined gain is
X = ||h||^2 ~ Gamma(N, 1), so the mean post-combining SNR is N / N0; the
biased-MMSE NMSE is E[a / (X + a)], a = N0, which by polynomial division of
x^(N-1) / (x + a) is
a / (N-1)! [sum_{k=0}^{N-2} k! (-a)^(N-2-k) + (-a)^(N-1) e^a E1(a)];
QPSK's BER is Proakis' L-branch MRC form
((1-mu)/2)^L sum_{k<L} C(L-1+k, k) ((1+mu)/2)^k, mu = sqrt(g / (1+g)), g = Es/N0 / 2.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import math

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf
from scipy.special import exp1

from phy import theory
from phy.combining import MaximumRatioCombiner
from phy.config import LinkConfig, LinkConfigError
from phy.link import Link
from phy.seeding import set_seed


@pytest.fixture(autouse=True)
def _seed():
    set_seed(4321)
    tf.random.set_seed(4321)


def noise_variance(snr_db) -> np.ndarray:
    return 10.0 ** (-np.asarray(snr_db, dtype=float) / 10.0)


def gamma_mmse_nmse(snr_db: float, n: int) -> float:
    """E[a / (X + a)], X ~ Gamma(n, 1), in closed form (see the module docstring)."""
    a = float(noise_variance(snr_db))
    poly = sum(math.factorial(k) * (-a) ** (n - 2 - k) for k in range(n - 1))
    return a / math.factorial(n - 1) * (poly + (-a) ** (n - 1) * math.exp(a) * exp1(a))


def proakis_ber(snr_db: float, n: int) -> float:
    g = 0.5 / float(noise_variance(snr_db))
    mu = math.sqrt(g / (1.0 + g))
    tail = sum(math.comb(n - 1 + k, k) * ((1.0 + mu) / 2.0) ** k for k in range(n))
    return ((1.0 - mu) / 2.0) ** n * tail


def ber(out) -> np.ndarray:
    errors = tf.cast(tf.not_equal(out.bits, out.bits_hat), tf.float64)
    return tf.reduce_mean(errors, axis=[1, 2]).numpy()


def features(num_users: int, num_samples: int, d: int) -> tf.Tensor:
    return sionna.phy.config.tf_rng.normal([num_users, num_samples, d])


# A tiny grid (24 data REs, no pilots) gives many independent fades cheaply.
# Perfect CSI and the biased MMSE equalizer are the defaults.
TINY = LinkConfig(channel="rayleigh", rb_per_user=1, num_ofdm_symbols=2, pilot_pattern="empty")
TINY = dataclasses.replace(TINY, jit_compile=False)


@pytest.fixture(scope="module")
def tiny_links() -> dict[tuple[str, int], Link]:
    """Rayleigh, perfect CSI, biased MMSE on the tiny grid: uplink and MRT downlink."""
    return {
        (direction, n): Link(dataclasses.replace(TINY, bs_antennas=n), 8, direction)
        for direction in ("uplink", "downlink")
        for n in (2, 4)
    }


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"bs_antennas": 0}, "bs_antennas"),
        ({"bs_antennas": True}, "bs_antennas"),
        ({"bs_antennas": 2.0}, "bs_antennas"),
        ({"combining": "sum"}, "combining"),
        ({"precoding": "zf"}, "precoding"),
        ({"bs_array": "upa"}, "bs_array"),
        ({"channel": "tdl-a", "rx_correlation": 1.0}, "rx_correlation"),
        ({"channel": "tdl-a", "rx_correlation": -0.1}, "rx_correlation"),
        ({"channel": "rayleigh", "rx_correlation": 0.5}, "rx_correlation"),
        ({"channel": "tdl-a", "bs_array": "panel"}, "bs_array"),
    ],
)
def test_bad_antenna_settings_name_the_key(changes, key):
    with pytest.raises(LinkConfigError) as err:
        LinkConfig(**changes)
    assert err.value.key == key


def test_antenna_settings_that_apply_are_accepted():
    LinkConfig(channel="tdl-c", bs_antennas=4, rx_correlation=0.9)
    LinkConfig(channel="cdl-b", bs_antennas=8, bs_array="panel", combining="mrc")
    LinkConfig(channel="umi", bs_antennas=2, precoding="none")
    LinkConfig(bs_antennas=1, precoding="mrt")  # MRT of one antenna: nothing to do


def test_precoded_downlink_refuses_the_time_domain():
    config = LinkConfig(channel="tdl-a", bs_antennas=2, domain="time", jit_compile=False)
    Link(config, 16, "uplink")  # SIMO in the time domain is fine
    with pytest.raises(LinkConfigError) as err:
        Link(config, 16, "downlink")
    assert err.value.key == "domain"
    Link(dataclasses.replace(config, precoding="none"), 16, "downlink")


# ------------------------------------------------------------------ theory


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8])
def test_closed_forms_of_n_branch_combining(n):
    for snr in (-5.0, 0.0, 10.0, 20.0):
        assert float(theory.mrc_mmse_nmse(snr, n)) == pytest.approx(
            gamma_mmse_nmse(snr, n), rel=1e-6
        )
        assert float(theory.mrc_qpsk_ber(snr, n)) == pytest.approx(proakis_ber(snr, n), rel=1e-12)
    # one branch: the single-antenna forms; L = 2 at 0 dB: 1 - e E1(1) = 0.403653
    assert theory.mrc_mmse_nmse(3.0, 1) == pytest.approx(theory.rayleigh_mmse_nmse(3.0))
    assert float(theory.mrc_mmse_nmse(0.0, 2)) == pytest.approx(0.4036526, abs=1e-6)
    # AWGN with N antennas: N times the SNR
    assert float(theory.feature_nmse("awgn", "perfect", "zf", 10.0, bs_antennas=4)) == (
        pytest.approx(0.025)
    )


def test_feature_nmse_falls_with_the_number_of_antennas():
    nmse = [float(theory.mrc_mmse_nmse(10.0, n)) for n in (1, 2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(nmse))
    # at high SNR E[1 / X] = 1 / (N - 1) for N > 1: NMSE ~ N0 / (N - 1)
    assert float(theory.mrc_mmse_nmse(40.0, 4)) == pytest.approx(1e-4 / 3, rel=0.01)


# ------------------------------------------------------------------ simulation


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 4])
def test_mrc_qpsk_ber_and_mmse_nmse_follow_n_branch_diversity(tiny_links, n):
    link = tiny_links[("uplink", n)]
    num_samples = 10000 * link.packing.samples_per_slot  # 10000 independent fades per user
    snr = [0.0, 3.0] if n == 4 else [0.0, 5.0]
    out = link.transmit_qpsk(2, num_samples, snr)
    np.testing.assert_allclose(ber(out), [proakis_ber(s, n) for s in snr], rtol=0.12)
    snr = [0.0, 10.0]
    measured = link(features(2, num_samples, 8), snr, measure=True).nmse.numpy()
    np.testing.assert_allclose(measured, [gamma_mmse_nmse(s, n) for s in snr], rtol=0.08)


@pytest.mark.slow
def test_mrt_downlink_has_the_same_array_gain(tiny_links):
    link = tiny_links[("downlink", 4)]
    num_samples = 10000 * link.packing.samples_per_slot
    snr = [0.0, 10.0]
    measured = link(features(2, num_samples, 8), snr, measure=True).nmse.numpy()
    np.testing.assert_allclose(measured, [gamma_mmse_nmse(s, 4) for s in snr], rtol=0.08)


def test_mean_post_combining_snr_is_n_times_the_per_branch_snr(tiny_links):
    """Signal power after unit-norm MRC is ||h||^2 (mean N), noise power stays N0."""
    link = tiny_links[("uplink", 4)]
    n0 = 0.1
    batch = 20000
    x = link._mapper(link._qpsk(link._bits([batch, 1, 1, 48])))
    no = tf.fill([batch], n0)
    y, h, _ = link._propagation(x, no)
    assert y.shape[2] == 4 and h.shape[2] == 4
    y_c, h_c, _ = MaximumRatioCombiner()(y, h, tf.zeros([]))
    signal = h_c[:, :, :, 0, 0] * x
    gain = float(tf.reduce_mean(tf.abs(h_c) ** 2))
    noise = float(tf.reduce_mean(tf.abs(y_c - signal) ** 2))
    assert gain == pytest.approx(4.0, rel=0.03)
    assert noise == pytest.approx(n0, rel=0.02)
    post_snr = float(tf.reduce_mean(tf.abs(signal) ** 2)) / noise
    assert post_snr == pytest.approx(4.0 / n0, rel=0.04)


def test_mrt_keeps_one_antennas_transmit_power(tiny_links):
    link = tiny_links[("downlink", 4)]
    prop = link._propagation
    batch = 5000
    h = prop._generate(batch)
    assert h.shape[4] == 4
    x = tf.ones([batch, 1, 1, *h.shape[-2:]], tf.complex64)
    w = prop._precoder(x, h)  # Sionna's RZF at alpha = 0, for one user = MRT
    power = tf.reduce_sum(tf.abs(w) ** 2, axis=2)
    np.testing.assert_allclose(power.numpy(), 1.0, rtol=1e-5)
    mrt = tf.math.conj(h[:, 0, 0, 0]) / tf.cast(
        tf.norm(h[:, 0, 0, 0], axis=1, keepdims=True), h.dtype
    )
    np.testing.assert_allclose(w[:, 0].numpy(), mrt.numpy(), atol=1e-5)
    gain = tf.abs(tf.reduce_sum(h[:, 0, 0, 0] * w[:, 0], axis=1)) ** 2
    assert float(tf.reduce_mean(gain)) == pytest.approx(4.0, rel=0.03)


@pytest.mark.parametrize("equalizer", ["mmse", "zf"])
def test_mrc_equals_sionnas_combining_for_one_stream(equalizer):
    base = LinkConfig(channel="rayleigh", csi="ls", bs_antennas=4, equalizer=equalizer)
    base = dataclasses.replace(base, jit_compile=False)
    f = features(2, 300, 16)
    out = {}
    for combining in ("equalizer", "mrc"):
        set_seed(7)
        link = Link(dataclasses.replace(base, combining=combining), 16)
        out[combining] = link(f, [0.0, 10.0]).numpy()
    np.testing.assert_allclose(out["mrc"], out["equalizer"], rtol=1e-3, atol=1e-4)


def test_awgn_with_n_antennas_gains_n_in_snr():
    config = LinkConfig(channel="awgn", bs_antennas=4, equalizer="zf", jit_compile=False)
    f = features(2, 2000, 64)
    for direction in ("uplink", "downlink"):
        nmse = Link(config, 64, direction)(f, [0.0, 10.0], measure=True).nmse.numpy()
        np.testing.assert_allclose(nmse, [0.25, 0.025], rtol=0.03)


def test_precoding_none_sends_from_one_antenna():
    config = dataclasses.replace(TINY, channel="awgn", bs_antennas=4, precoding="none")
    nmse = Link(config, 8, "downlink")(features(1, 6000, 8), 0.0, measure=True).nmse.numpy()
    assert float(nmse[0]) == pytest.approx(0.5, rel=0.03)  # N0 / (1 + N0), no array gain


def test_tdl_receive_correlation_follows_the_exponential_model():
    config = LinkConfig(
        channel="tdl-a", bs_antennas=4, rx_correlation=0.8, csi="perfect", jit_compile=False
    )
    link = Link(config, 16)
    x = tf.zeros([4000, 1, 1, config.num_ofdm_symbols, config.num_subcarriers], tf.complex64)
    _, h, _ = link._propagation(x, tf.fill([4000], 1.0))
    h = h[:, 0, :, 0, 0, 0, 0].numpy()  # [batch, antennas] at one RE
    corr = (h.conj().T @ h) / len(h)
    np.testing.assert_allclose(np.diag(corr).real, 1.0, atol=0.08)
    for lag in (1, 2):
        measured = np.mean(np.abs(np.diag(corr, lag)))
        assert measured == pytest.approx(0.8**lag, abs=0.06)


def test_cdl_and_umi_use_a_ula_of_n_elements():
    f = features(1, 200, 16)
    for channel, array in (("cdl-a", "ula"), ("cdl-a", "panel"), ("umi", "ula")):
        config = LinkConfig(channel=channel, bs_antennas=4, bs_array=array, jit_compile=False)
        for direction in ("uplink", "downlink"):
            link = Link(config, 16, direction)
            assert link._propagation.__class__.__name__ in ("Propagation", "MrtPropagation")
            out = link(f, 20.0, measure=True)
            assert np.all(np.isfinite(out.received.numpy()))
            assert float(out.nmse[0]) < 0.2


def test_downlink_scale_restores_gradients_through_mrt():
    for csi in ("perfect", "ls"):
        config = LinkConfig(channel="cdl-a", csi=csi, bs_antennas=4, jit_compile=False)
        link = Link(config, 16, direction="downlink")
        g = 1e-3 * tf.random.normal([2, 50, 16]) * tf.random.uniform([2, 50, 1], 0.1, 10.0)
        if csi == "perfect":
            noiseless = link.send_gradients(g, float("inf"))
            np.testing.assert_allclose(noiseless.numpy(), g.numpy(), rtol=1e-3, atol=1e-9)
        else:  # reciprocity from an LS estimate at 40 dB: close, not exact
            received = link.send_gradients(g, 40.0)
            err = tf.reduce_sum((received - g) ** 2) / tf.reduce_sum(g**2)
            assert float(err) < 0.01


def test_reciprocity_csi_costs_array_gain_at_low_snr():
    base = dataclasses.replace(TINY, pilot_pattern="kronecker", pilot_ofdm_symbol_indices=(0,))
    base = dataclasses.replace(base, bs_antennas=4, num_ofdm_symbols=4)
    f = features(1, 3000, 8)
    nmse = {}
    for csi in ("perfect", "ls"):
        link = Link(dataclasses.replace(base, csi=csi), 8, "downlink")
        nmse[csi] = float(link(f, -5.0, measure=True).nmse[0])
    assert nmse["ls"] > 1.1 * nmse["perfect"]


@pytest.mark.slow
def test_link_cli_varies_bs_antennas_with_theory(tmp_path):
    from semfed.cli import main

    out = tmp_path / "ant"
    argv = ["link", "--channel", "rayleigh", "--csi", "perfect", "--snr=0,10", "--samples"]
    argv += ["300", "--feature-dim", "16", "--no-progress", "--out", str(out)]
    argv += ["--set", "link.bs_antennas=1,4"]
    assert main(argv) == 0
    with (out / "link.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["bs_antennas"], float(r["snr_db"])) for r in rows] == [
        ("1", 0.0),
        ("1", 10.0),
        ("4", 0.0),
        ("4", 10.0),
    ]
    for r in rows:
        n = int(r["bs_antennas"])
        expected = gamma_mmse_nmse(float(r["snr_db"]), n)
        assert float(r["theory_nmse"]) == pytest.approx(expected, rel=1e-6)
        assert float(r["theory_ber_qpsk"]) == pytest.approx(
            proakis_ber(float(r["snr_db"]), n), rel=1e-9
        )
