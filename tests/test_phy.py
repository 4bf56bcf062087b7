"""Tests of the Sionna OFDM link (package ``phy``), checked against closed forms.

Reference values come from theory, not from the code under test:
AWGN NMSE = N0 (unbiased) or N0 / (1 + N0) (biased MMSE); QPSK BER in AWGN
= Q(sqrt(Es/N0)); in Rayleigh block fading with perfect CSI
= (1 - sqrt(g / (1 + g))) / 2 with g = Es/N0 / 2; biased-MMSE NMSE in Rayleigh
fading = N0 e^N0 E1(N0).
"""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
import sionna.phy
import tensorflow as tf
from scipy.special import exp1

import phy.link
from phy.channels import SingleSectorChannel, build_channel_model
from phy.config import CHANNEL_MODELS, LinkConfig, LinkConfigError, per_user_snr_db
from phy.features import features_to_symbols, normalize_power, symbols_to_features
from phy.link import Link
from phy.propagation import Propagation
from phy.resource_grid import SlotPacking, build_resource_grid
from phy.seeding import set_seed, sionna_seed


def q_function(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.vectorize(math.erfc)(np.asarray(x) / math.sqrt(2.0))


def noise_variance(snr_db) -> np.ndarray:
    return 10.0 ** (-np.asarray(snr_db, dtype=float) / 10.0)


def user_ber(out) -> np.ndarray:
    """Bit error rate per user of a QpskOutput."""
    errors = tf.cast(tf.not_equal(out.bits, out.bits_hat), tf.float64)
    return tf.reduce_mean(errors, axis=[1, 2]).numpy()


@pytest.fixture(autouse=True)
def _seed():
    set_seed(1234)
    tf.random.set_seed(1234)


def gaussian_features(num_users: int, num_samples: int, d: int) -> tf.Tensor:
    return sionna.phy.config.tf_rng.normal([num_users, num_samples, d])


# ------------------------------------------------------------------ fixtures
# Links are compiled once per session and shared by the tests that need them.


@pytest.fixture(scope="session")
def awgn_links() -> dict[str, Link]:
    """AWGN with perfect CSI for each equalizer, and with LS CSI (key ``ls``)."""
    base = LinkConfig(channel="awgn", csi="perfect")
    links = {
        eq: Link(dataclasses.replace(base, equalizer=eq), 64) for eq in ("zf", "lmmse", "mmse")
    }
    links["ls"] = Link(dataclasses.replace(base, csi="ls", equalizer="mmse"), 64)
    return links


@pytest.fixture(scope="session")
def rayleigh_small_link() -> Link:
    """Rayleigh block fading, perfect CSI, biased MMSE, on a tiny grid (many fades cheaply)."""
    config = LinkConfig(
        channel="rayleigh",
        rb_per_user=1,
        num_ofdm_symbols=2,
        pilot_pattern="empty",
        csi="perfect",
        equalizer="mmse",
    )
    return Link(config, 8)


@pytest.fixture(scope="session")
def rayleigh_ls_links() -> dict[str, Link]:
    """Rayleigh block fading with LS CSI for each equalizer."""
    base = LinkConfig(channel="rayleigh", csi="ls")
    return {eq: Link(dataclasses.replace(base, equalizer=eq), 16) for eq in ("mmse", "lmmse", "zf")}


# --------------------------------------------------------- features, packing


def test_normalize_power_gives_unit_symbol_power_and_keeps_zero():
    f = tf.constant(np.random.default_rng(0).normal(size=(3, 5, 64)) * 7.0, tf.float32)
    s = features_to_symbols(normalize_power(f))
    np.testing.assert_allclose(tf.reduce_mean(tf.abs(s) ** 2, axis=-1).numpy(), 1.0, rtol=1e-5)
    # Interleaved convention: s[k] = f[2k] + j f[2k+1].
    np.testing.assert_allclose(tf.math.real(s).numpy(), normalize_power(f).numpy()[..., 0::2])
    np.testing.assert_allclose(symbols_to_features(s).numpy(), normalize_power(f).numpy())
    zero = tf.zeros([2, 8])
    with tf.GradientTape() as tape:
        tape.watch(zero)
        out = normalize_power(zero)
    assert np.all(out.numpy() == 0.0)
    assert np.all(np.isfinite(tape.gradient(out, zero).numpy()))


def test_slot_packing_counts_and_round_trip():
    config = LinkConfig()  # 48 subcarriers x 12 data symbols = 576 data REs
    packing = SlotPacking.for_config(config, 64)
    assert packing.samples_per_slot == 576 // 32
    assert packing.num_slots(40) == math.ceil(40 / 18)
    symbols = tf.complex(tf.random.normal([2, 40, 32]), tf.random.normal([2, 40, 32]))
    slots = packing.pack(symbols)
    assert slots.shape == (2 * 3, 576)
    # Padding is zero: 40 samples use 40 * 32 of the 3 * 576 REs of each user.
    assert np.count_nonzero(slots.numpy()) == 2 * 40 * 32
    np.testing.assert_array_equal(packing.unpack(slots, 2, 40).numpy(), symbols.numpy())


def test_nearby_seeds_give_independent_streams():
    # Sionna's own seed is TensorFlow's Philox counter: seed 1 replays seed 0
    # shifted by four numbers. set_seed spreads seeds apart.
    sionna.phy.config.seed = 0
    raw0 = sionna.phy.config.tf_rng.normal([8]).numpy()
    sionna.phy.config.seed = 1
    raw1 = sionna.phy.config.tf_rng.normal([8]).numpy()
    np.testing.assert_array_equal(raw1[:4], raw0[4:])
    set_seed(0)
    a = sionna.phy.config.tf_rng.normal([1000]).numpy()
    set_seed(1)
    b = sionna.phy.config.tf_rng.normal([1000]).numpy()
    assert not np.isin(b, a).any()
    assert sionna_seed(5) == sionna_seed(5) != sionna_seed(6)


# ------------------------------------------------------------------- theory


@pytest.mark.parametrize("equalizer", ["zf", "lmmse"])
def test_awgn_unbiased_nmse_matches_theory_per_user(awgn_links, equalizer):
    snr = [0.0, 10.0, 20.0]  # one SNR per user: also checks per-user SNR
    out = awgn_links[equalizer](gaussian_features(3, 2000, 64), snr, measure=True)
    np.testing.assert_allclose(out.nmse.numpy(), noise_variance(snr), rtol=0.05)


def test_awgn_biased_mmse_nmse_matches_theory(awgn_links):
    snr = [0.0, 10.0, 20.0]
    out = awgn_links["mmse"](gaussian_features(3, 2000, 64), snr, measure=True)
    n0 = noise_variance(snr)
    np.testing.assert_allclose(out.nmse.numpy(), n0 / (1.0 + n0), rtol=0.05)


@pytest.mark.slow
def test_qpsk_ber_in_awgn_matches_q_function(awgn_links):
    snr = [0.0, 4.0, 8.0]
    out = awgn_links["mmse"].transmit_qpsk(3, 4000, snr)
    theory = q_function(np.sqrt(10.0 ** (np.asarray(snr) / 10.0)))
    assert np.all(theory >= 1e-3)
    np.testing.assert_allclose(user_ber(out), theory, rtol=0.10)


@pytest.mark.slow
def test_rayleigh_block_fading_ber_and_mmse_nmse_match_theory(rayleigh_small_link):
    link = rayleigh_small_link
    # 10000 slots (independent fades) per user.
    num_samples = 10000 * link.packing.samples_per_slot
    snr = np.array([0.0, 5.0, 10.0])
    g = 10.0 ** (snr / 10.0) / 2.0  # Eb/N0 of QPSK
    ber_theory = 0.5 * (1.0 - np.sqrt(g / (1.0 + g)))
    out = link.transmit_qpsk(3, num_samples, list(snr))
    np.testing.assert_allclose(user_ber(out), ber_theory, rtol=0.10)

    snr = np.array([0.0, 10.0, 20.0])
    n0 = noise_variance(snr)
    nmse_theory = n0 * np.exp(n0) * exp1(n0)  # E[N0 / (|h|^2 + N0)], |h|^2 ~ Exp(1)
    measured = link(gaussian_features(3, num_samples, 8), list(snr), measure=True)
    np.testing.assert_allclose(measured.nmse.numpy(), nmse_theory, rtol=0.10)


def test_ls_csi_is_worse_than_perfect_and_the_gap_shrinks(awgn_links):
    snr = [0.0, 10.0, 20.0]
    f = gaussian_features(3, 2000, 64)
    perfect = awgn_links["mmse"](f, snr, measure=True).nmse.numpy()
    ls = awgn_links["ls"](f, snr, measure=True).nmse.numpy()
    assert np.all(ls > perfect)
    gap = ls - perfect
    assert gap[0] > gap[1] > gap[2] > 0


@pytest.mark.slow
def test_short_cyclic_prefix_causes_isi_in_the_time_domain():
    # TDL-C at 1000 ns: paths up to 8.65 us, i.e. 13 samples at 1.44 MHz; with
    # Sionna's lags -6..19 the channel spans 26 samples.
    snr = 30.0
    n0 = noise_variance(snr)
    floor = n0 * math.exp(n0) * exp1(n0)  # every RE is Rayleigh faded (all-NLoS TDL-C)
    base = LinkConfig(channel="tdl-c", delay_spread_ns=1000.0, domain="time", equalizer="mmse")
    nmse = {}
    for cp in (0, 28):
        link = Link(dataclasses.replace(base, cyclic_prefix_length=cp), 64)
        nmse[cp] = float(link(gaussian_features(1, 4000, 64), snr, measure=True).nmse[0])
    assert nmse[0] > 10 * floor
    assert 0.5 * floor < nmse[28] < 2.0 * floor


def _nmse_with_interval(link: Link, snr_db: float, num_samples: int) -> tuple[float, float, float]:
    """Feature NMSE of one call and its 95 % interval over the call's slots."""
    from phy.confidence import ratio_interval

    out = link(gaussian_features(1, num_samples, link.feature_dim), snr_db, measure=True)
    err = tf.reduce_sum(tf.square(out.received - out.sent), axis=-1)[0].numpy()
    power = tf.reduce_sum(tf.square(out.sent), axis=-1)[0].numpy()
    slot = link.packing.slot_sums
    return ratio_interval(slot(err.astype(np.float64)), slot(power.astype(np.float64)))


@pytest.mark.slow
def test_time_domain_channel_has_inter_carrier_interference_at_high_doppler():
    """TDL-A at 28 GHz with 15 kHz subcarriers, perfect CSI, 20 dB. At 500 km/h the
    Doppler shift f_D = 138.9 m/s * 28 GHz / c = 12.97 kHz is 0.86 of the spacing:
    the channel turns within each OFDM symbol and the time-domain link leaks
    power between subcarriers, which the frequency-domain channel (one gain
    per RE) cannot. At 0 km/h the two simulations agree."""
    from phy import theory

    base = LinkConfig(
        channel="tdl-a", carrier_frequency_ghz=28.0, subcarrier_spacing_khz=15.0, jit_compile=False
    )
    snr, samples = 20.0, 1800  # 18 samples of d = 64 per slot: 100 slots per call
    nmse = {}
    for speed in (0.0, 500.0):
        for domain in ("frequency", "time"):
            config = dataclasses.replace(base, speed_kmh=speed, domain=domain)
            nmse[speed, domain] = _nmse_with_interval(Link(config, 64), snr, samples)
    # 0 km/h: the two (independent) estimates differ by less than the 95 % interval
    # of their difference (half-widths added in quadrature).
    (f0, f0_low, f0_high), (t0, t0_low, t0_high) = nmse[0.0, "frequency"], nmse[0.0, "time"]
    assert abs(t0 - f0) <= math.hypot(f0_high - f0_low, t0_high - t0_low) / 2, nmse
    # 500 km/h: the frequency domain is as good as standing still, the time domain
    # an order of magnitude worse, with disjoint intervals.
    f500, t500 = nmse[500.0, "frequency"], nmse[500.0, "time"]
    assert f500[0] < 2 * f0_high, nmse
    assert t500[1] > 10 * f500[2], nmse
    # And about as much worse as Jakes' spectrum (Sionna's TDL is a sum of
    # sinusoids with that spectrum) says: ICI power 0.63, NMSE 0.71 at 20 dB.
    doppler = 500 / 3.6 * 28e9 / 299_792_458.0
    ici = theory.jakes_ici_power(doppler, 15e3, config.num_subcarriers)
    assert ici == pytest.approx(0.63, abs=0.01)
    expected = float(theory.rayleigh_ici_mmse_nmse(snr, ici))
    assert t500[0] == pytest.approx(expected, rel=0.2), (t500, expected)


def test_speed_kmh_sets_both_ends_of_the_range():
    config = LinkConfig(speed_kmh=120.0)
    assert (config.min_speed_kmh, config.max_speed_kmh) == (120.0, 120.0)
    # Written out and read back (a run's config.toml), the three keys agree.
    assert LinkConfig(speed_kmh=120.0, min_speed_kmh=120.0, max_speed_kmh=120.0) == config
    with pytest.raises(LinkConfigError, match="speed_kmh"):
        LinkConfig(speed_kmh=30.0, max_speed_kmh=120.0)
    with pytest.raises(LinkConfigError, match="speed_kmh"):
        LinkConfig(speed_kmh=-1.0)


# ------------------------------------------------- users, seeds, gradients


def test_users_are_orthogonal_and_a_seed_reproduces_the_call(rayleigh_ls_links):
    link = rayleigh_ls_links["mmse"]
    f = gaussian_features(3, 40, 16)
    changed = tf.concat([f[:1], 5.0 * tf.random.normal([1, 40, 16]), f[2:]], axis=0)
    set_seed(7)
    first = link(f, [5.0, 10.0, 15.0]).numpy()
    set_seed(7)
    again = link(f, [5.0, 10.0, 15.0]).numpy()
    set_seed(7)
    other = link(changed, [5.0, 10.0, 15.0]).numpy()
    set_seed(8)
    reseeded = link(f, [5.0, 10.0, 15.0]).numpy()
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(other[0], first[0])
    np.testing.assert_array_equal(other[2], first[2])
    assert not np.allclose(other[1], first[1])
    assert not np.allclose(reseeded, first)


def _gradient(link: Link, num_users: int = 2, num_samples: int = 20) -> np.ndarray:
    f = gaussian_features(num_users, num_samples, link.feature_dim)
    weights = tf.random.normal(f.shape)
    with tf.GradientTape() as tape:
        tape.watch(f)
        loss = tf.reduce_sum(link(f, [5.0, 15.0]) * weights)
    return tape.gradient(loss, f).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("equalizer", ["mmse", "lmmse", "zf"])
def test_gradients_flow_through_rayleigh_ls_link(rayleigh_ls_links, equalizer):
    grad = _gradient(rayleigh_ls_links[equalizer])
    assert np.all(np.isfinite(grad))
    assert np.count_nonzero(grad) > 0.9 * grad.size


@pytest.mark.slow
def test_gradients_flow_through_tdl_link():
    link = Link(LinkConfig(channel="tdl-b", csi="ls", max_speed_kmh=30.0), 16)
    grad = _gradient(link)
    assert np.all(np.isfinite(grad))
    assert np.count_nonzero(grad) > 0.9 * grad.size


# ------------------------------------------------------------------ downlink


def test_downlink_scale_restores_gradients_exactly_without_noise():
    link = Link(LinkConfig(channel="rayleigh", csi="perfect"), 16, direction="downlink")
    g = 1e-3 * tf.random.normal([2, 50, 16]) * tf.random.uniform([2, 50, 1], 0.1, 10.0)
    noiseless = link.send_gradients(g, float("inf"))
    np.testing.assert_allclose(noiseless.numpy(), g.numpy(), rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(
        tf.norm(noiseless, axis=-1).numpy(), tf.norm(g, axis=-1).numpy(), rtol=1e-5
    )


def test_downlink_scale_keeps_gradient_norm_in_expectation(awgn_links):
    # Unbiased equalizer in AWGN: E||g_check||^2 = ||g||^2 (1 + N0).
    snr = [10.0, 20.0]
    g = tf.random.normal([2, 2000, 64]) * tf.random.uniform([2, 2000, 1], 0.01, 100.0)
    received = awgn_links["zf"].send_gradients(g, snr)
    ratio = tf.reduce_mean(
        tf.reduce_sum(received**2, axis=-1) / tf.reduce_sum(g**2, axis=-1), axis=1
    )
    np.testing.assert_allclose(ratio.numpy(), 1.0 + noise_variance(snr), rtol=0.01)


def test_xla_compiled_link_is_reproducible_and_matches_theory():
    link = Link(LinkConfig(channel="awgn", equalizer="zf"), 64, jit_compile=True)
    f = gaussian_features(2, 500, 64)
    set_seed(3)
    first = link(f, [10.0, 20.0], measure=True)
    set_seed(3)
    again = link(f, [10.0, 20.0], measure=True)
    np.testing.assert_array_equal(again.received.numpy(), first.received.numpy())
    np.testing.assert_allclose(first.nmse.numpy(), [0.1, 0.01], rtol=0.05)


def test_link_function_holds_its_blocks_tensors_as_constants():
    """The traced link takes only its arguments and the generator's state as inputs
    (phy.inline); the blocks get their own tensors back after the trace, and the
    link computes what it computes with them passed as inputs."""
    from phy.inline import constants_inlined

    config = LinkConfig(channel="tdl-a", csi="ls", rb_per_user=2)
    link = Link(config, 64, jit_compile=True)
    f = gaussian_features(1, 40, 64)
    no = link.noise_variance(10.0, 1)
    concrete = link._features_fn.get_concrete_function(f, no)
    assert [t.dtype for t in concrete.captured_inputs] == [tf.resource]
    mapper_tensors = {k: v for k, v in vars(link._mapper).items() if isinstance(v, tf.Tensor)}
    assert mapper_tensors and all(hasattr(v, "numpy") for v in mapper_tensors.values())

    plain = tf.function(link._features_graph, jit_compile=True)
    assert len(plain.get_concrete_function(f, no).captured_inputs) > 10
    set_seed(5)
    inlined = link._features_fn(f, no)[0]
    set_seed(5)
    passed = plain(f, no)[0]
    np.testing.assert_allclose(inlined.numpy(), passed.numpy(), atol=1e-5)
    assert float(tf.reduce_max(tf.abs(inlined))) > 0.1
    with constants_inlined(link) as swapped:  # eagerly: nothing to do
        assert swapped == 0


def test_constants_inlined_swaps_only_during_a_trace_and_puts_them_back():
    from phy.inline import constants_inlined

    class Holder:
        pass

    holder = Holder()
    holder.table = tf.constant([1.0, 2.0, 3.0])
    holder.items = [tf.constant(4.0), "name"]
    holder.weights = tf.Variable([1.0])
    originals = (holder.table, holder.items[0], holder.weights)
    seen = {}

    @tf.function
    def traced():
        with constants_inlined(holder) as swapped:
            seen["swapped"] = swapped
            seen["symbolic"] = tf.is_symbolic_tensor(holder.table)
            seen["variable kept"] = holder.weights is originals[2]
            return tf.reduce_sum(holder.table) + holder.items[0] + holder.weights[0]

    assert float(traced()) == 11.0
    assert seen == {"swapped": 2, "symbolic": True, "variable kept": True}
    now = (holder.table, holder.items[0], holder.weights)
    assert all(a is b for a, b in zip(now, originals, strict=True))
    assert len(traced.get_concrete_function().captured_inputs) == 1  # the variable


# --------------------------------------------------------------- bad configs


def test_bad_configs_raise_link_config_error():
    with pytest.raises(LinkConfigError, match="pilot_ofdm_symbol_indices"):
        LinkConfig(pilot_ofdm_symbol_indices=(2, 14))
    with pytest.raises(LinkConfigError, match="cyclic_prefix_length"):
        LinkConfig(rb_per_user=1, cyclic_prefix_length=13)
    with pytest.raises(LinkConfigError, match="tdl-a") as err:
        LinkConfig(channel="tdl-z")
    assert err.value.key == "channel"
    with pytest.raises(LinkConfigError, match="snr_db"):
        per_user_snr_db((1.0, 2.0), 3)
    with pytest.raises(LinkConfigError, match="equalizer"):
        LinkConfig(equalizer="ml")
    with pytest.raises(LinkConfigError, match="feature_dim"):
        Link(LinkConfig(), 63)


def test_wrong_number_of_user_snrs_raises(awgn_links):
    with pytest.raises(LinkConfigError, match="snr_db"):
        awgn_links["zf"](tf.zeros([3, 4, 64]), [1.0, 2.0])


# ---------------------------------------------------------- channel catalogue


@pytest.fixture
def eager():
    """Run tf.functions eagerly: a one-off small call is faster than tracing."""
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.mark.parametrize("channel", CHANNEL_MODELS)
def test_every_catalogued_channel_runs(eager, channel):
    config = LinkConfig(channel=channel, csi="ls", rb_per_user=1, max_speed_kmh=10.0)
    link = Link(config, 8, direction="downlink" if channel.startswith("cdl") else "uplink")
    out = link(gaussian_features(2, 5, 8), 10.0, measure=True)
    assert out.received.shape == (2, 5, 8)
    assert np.all(np.isfinite(out.received.numpy()))
    assert np.all(out.nmse.numpy() < 5.0)


# ------------------------------------------- channel catalogue: gain and fading statistics
# One small grid (12 subcarriers x 2 OFDM symbols, no pilots) and many slots, each
# slot an independent channel realisation, all in one batched call.

SMALL_GRID = {"rb_per_user": 1, "num_ofdm_symbols": 2, "pilot_pattern": "empty"}
SLOTS = 2000
# Slow to draw (seconds each, eagerly): the clustered and the 38.901 scenario models.
_SLOW_MODELS = {"cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e", "umi", "uma", "rma"}


def _models(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_MODELS else n for n in names]


@pytest.mark.parametrize("direction", ["uplink", "downlink"])
@pytest.mark.parametrize("channel", _models(CHANNEL_MODELS))
def test_every_channel_model_has_unit_mean_gain(eager, channel, direction):
    """E|h|^2 = 1 per RE over realisations, so the configured SNR is the mean SNR."""
    config = LinkConfig(channel=channel, **SMALL_GRID)
    propagation = Propagation(
        config, build_resource_grid(config), build_channel_model(config, direction)
    )
    shape = [SLOTS, 1, 1, config.num_ofdm_symbols, config.num_subcarriers]
    _, h, _ = propagation(tf.zeros(shape, tf.complex64), tf.ones([SLOTS]))
    assert h.shape[0] == SLOTS
    gain = float(tf.reduce_mean(tf.abs(h) ** 2))
    assert gain == pytest.approx(1.0, rel=0.10), gain  # standard error about 2 %


NLOS_MODELS = ["tdl-a", "tdl-b", "tdl-c", "cdl-a", "cdl-b", "cdl-c", "umi", "uma", "rma"]
LOS_MODELS = ["tdl-d", "tdl-e", "cdl-d", "cdl-e"]


@pytest.mark.parametrize("channel", _models(NLOS_MODELS + LOS_MODELS))
def test_perfect_csi_mmse_nmse_at_10_db_against_rayleigh(eager, monkeypatch, channel):
    """At 100 ns delay spread a 360 kHz sub-band fades flat, so every NLoS model (the
    38.901 drops forced NLoS) gives Rayleigh's biased-MMSE NMSE N0 e^N0 E1(N0); a
    line-of-sight component (TDL-D/E, CDL-D/E) fades less and does better. A link
    that returns zeros has NMSE 1."""
    if channel in ("umi", "uma", "rma"):
        monkeypatch.setattr(
            phy.link,
            "build_channel_model",
            lambda config, direction: SingleSectorChannel(
                config.channel,
                config.carrier_frequency_ghz * 1e9,
                direction,
                0.0,
                0.0,
                config.precision,
                los=False,
            ),
        )
    link = Link(LinkConfig(channel=channel, csi="perfect", equalizer="mmse", **SMALL_GRID), 8)
    f = gaussian_features(1, SLOTS * link.packing.samples_per_slot, 8)
    nmse = float(link(f, 10.0, measure=True).nmse[0])
    n0 = noise_variance(10.0)
    rayleigh = n0 * math.exp(n0) * exp1(n0)  # 0.2015
    if channel in LOS_MODELS:
        assert nmse < 0.8 * rayleigh, nmse
    else:
        assert nmse == pytest.approx(rayleigh, rel=0.20), nmse


# ------------------------------------------------------------ study and CLI


@pytest.mark.slow
def test_link_cli_writes_csv_and_plot(tmp_path):
    from phy.study import COLUMNS
    from semfed.cli import main

    out = tmp_path / "study"
    code = main(
        [
            "link",
            "--channel",
            "awgn,rayleigh",
            "--csi",
            "perfect",
            "--snr=0,10",
            "--samples",
            "100",
            "--feature-dim",
            "16",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    with (out / "link.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert set(COLUMNS) <= set(rows[0])
    assert [(r["channel"], float(r["snr_db"])) for r in rows] == [
        ("awgn", 0.0),
        ("awgn", 10.0),
        ("rayleigh", 0.0),
        ("rayleigh", 10.0),
    ]
    awgn_10 = float(rows[1]["feature_nmse"])
    assert awgn_10 == pytest.approx(0.1 / 1.1, rel=0.3)  # biased MMSE, only 100 samples
    # the figure's content is read back in tests/test_link_theory.py
    assert (out / "link.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_link_cli_varies_link_keys_given_as_lists(tmp_path, capsys):
    from semfed.cli import main

    out = tmp_path / "varied"
    argv = ["link", "--snr=10", "--samples", "200", "--feature-dim", "16"]
    argv += ["--no-progress", "--out", str(out)]
    code = main(
        [*argv, "--set", "link.channel=awgn,rayleigh", "--set", "link.cyclic_prefix_length=6,8"]
    )
    assert code == 0
    with (out / "link.csv").open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    # One column per varied key after the equalizer (the channel has its own already),
    # then the scheme's columns; every combination, in order.
    assert reader.fieldnames[:5] == [
        "channel",
        "csi",
        "equalizer",
        "cyclic_prefix_length",
        "scheme",
    ]
    assert [(r["channel"], r["cyclic_prefix_length"]) for r in rows] == [
        ("awgn", "6"),
        ("awgn", "8"),
        ("rayleigh", "6"),
        ("rayleigh", "8"),
    ]
    # The varied value reached the link: biased MMSE at 10 dB, 1/11 = 0.091 in AWGN
    # against E[1/(1 + 10|h|^2)] = 0.20 in Rayleigh fading.
    nmse = {(r["channel"], r["cyclic_prefix_length"]): float(r["feature_nmse"]) for r in rows}
    assert nmse[("awgn", "6")] == pytest.approx(1 / 11, rel=0.3)
    assert nmse[("rayleigh", "6")] > 1.5 * nmse[("awgn", "6")]
    # Only link keys may take a list; each listed value is checked like a single --set.
    assert main([*argv, "--set", "training.rounds=1,2"]) == 2
    assert "only link" in capsys.readouterr().err
    assert main([*argv, "--set", "link.cyclic_prefix_length=6,-1"]) == 2
    assert "cyclic_prefix_length" in capsys.readouterr().err


@pytest.mark.slow
def test_link_cli_varies_speed_in_the_time_domain(tmp_path):
    """``link.speed_kmh`` is one key for a list of speeds (both ends of the range), and
    the time-domain link at 28 GHz and 15 kHz shows the inter-carrier interference."""
    from semfed.cli import main

    out = tmp_path / "speeds"
    argv = ["link", "--channel", "tdl-a", "--snr=30", "--samples", "360", "--no-progress"]
    argv += ["--set", "link.domain=time", "--set", "link.carrier_frequency_ghz=28"]
    argv += ["--set", "link.subcarrier_spacing_khz=15", "--set", "link.speed_kmh=0,500"]
    assert main([*argv, "--set", "link.jit_compile=false", "--out", str(out)]) == 0
    with (out / "link.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["speed_kmh"] for r in rows] == ["0", "500"]
    nmse = [float(r["feature_nmse"]) for r in rows]
    # ~0.006 standing still at 30 dB, ~0.6 at 500 km/h (Jakes: ICI power 0.63)
    assert nmse[1] > 10 * nmse[0] and nmse[1] > 0.3, nmse


def test_link_cli_rejects_unknown_channel(tmp_path, capsys):
    from semfed.cli import main

    code = main(["link", "--channel", "awgn,nope", "--out", str(tmp_path)])
    assert code == 2
    assert "channel" in capsys.readouterr().err


# ------------------------------------------------------------------- airtime


def test_airtime_against_a_count_by_hand():
    from phy.airtime import feature_slots, payload_slots, round_airtime, slot_duration_ms

    # 4 RBs = 48 subcarriers, 14-symbol slots with pilots on 2 of them: 12 x 48 = 576
    # data REs; at 30 kHz (mu = 1) a slot lasts 1 ms / 2 = 0.5 ms.
    config = LinkConfig(rb_per_user=4, subcarrier_spacing_khz=30.0)
    assert config.num_data_res == 576 and slot_duration_ms(config) == 0.5
    # d = 64: 32 symbols a sample, floor(576 / 32) = 18 samples a slot. Mini-batches
    # of 32, 32 and 5 samples: 2 + 2 + 1 = 5 slots (every link call starts a slot).
    assert feature_slots(config, 64, [32, 32, 5]) == 5
    # 3 users in parallel with 5, 3 and 4 slots up and 5 each down: the busiest
    # sets each direction, 5 + 5 slots x 0.5 ms = 5 ms.
    air = round_airtime(config, [5, 3, 4], [5, 5, 5])
    assert (air.uplink_slots, air.downlink_slots, air.airtime_ms) == (5, 5, 5.0)
    # 10,000 parameters x 32 bits at 2 bits per RE (QPSK): 160,000 REs, ceil(160000 / 576)
    # = 278 slots; at 4 bits per RE (16-QAM) 80,000 REs, 139 slots. Nothing: 0 slots.
    assert payload_slots(config, 320_000) == 278
    assert payload_slots(config, 320_000, bits_per_symbol=4) == 139
    assert payload_slots(config, 0) == 0
    # Other numerologies: 15 kHz: 1 ms; 120 kHz: 0.125 ms; a 7-symbol grid is half a slot.
    assert slot_duration_ms(dataclasses.replace(config, subcarrier_spacing_khz=15.0)) == 1.0
    assert slot_duration_ms(dataclasses.replace(config, subcarrier_spacing_khz=120.0)) == 0.125
    half = dataclasses.replace(config, num_ofdm_symbols=7, pilot_ofdm_symbol_indices=(2,))
    assert slot_duration_ms(half) == 0.25 and half.num_data_res == 6 * 48
    # No pilots: all 14 x 48 = 672 REs carry data, 21 samples a slot.
    empty = dataclasses.replace(config, pilot_pattern="empty")
    assert feature_slots(empty, 64, [21, 22]) == 1 + 2


# ------------------------------------------------------------ users in a cell


# 38.901 Table 7.4.1-1 (h_UT < 13 m, so UMa's h_E = 1 m): BS height; LoS before the
# breakpoint A + B log10(d_3D) + 20 log10(fc), after it A + 40 log10(d_3D) + 20 log10(fc)
# - C log10(d_BP^2 + (h_BS - h_UT)^2); NLoS max(LoS, D + E log10(d_3D) + F log10(fc)
# - G (h_UT - 1.5)).
PATH_LOSS_TABLE = {
    "umi": (10.0, 32.4, 21.0, 9.5, 22.4, 35.3, 21.3, 0.3),
    "uma": (25.0, 28.0, 22.0, 9.0, 13.54, 39.08, 20.0, 0.6),
}


def _path_loss_by_hand(
    scenario: str, d_2d: float, fc_ghz: float, los: bool, h_ut: float = 1.5
) -> float:
    h_bs, a, b, c, d, e, f, g = PATH_LOSS_TABLE[scenario]
    d_3d = math.hypot(d_2d, h_bs - h_ut)
    d_bp = 4 * (h_bs - 1) * (h_ut - 1) * fc_ghz * 1e9 / 299_792_458.0  # effective heights
    if d_2d <= d_bp:
        pl_los = a + b * math.log10(d_3d) + 20 * math.log10(fc_ghz)
    else:
        far = 40 * math.log10(d_3d) - c * math.log10(d_bp**2 + (h_bs - h_ut) ** 2)
        pl_los = a + far + 20 * math.log10(fc_ghz)
    if los:
        return pl_los
    return max(pl_los, d + e * math.log10(d_3d) + f * math.log10(fc_ghz) - g * (h_ut - 1.5))


@pytest.mark.parametrize("los", [True, False])
@pytest.mark.parametrize("scenario", ["umi", "uma"])
@pytest.mark.parametrize(("d_2d", "fc_ghz"), [(100.0, 3.5), (400.0, 3.5), (60.0, 28.0)])
def test_one_user_at_a_known_distance_gets_the_38901_path_loss(scenario, los, d_2d, fc_ghz):
    # e.g. UMi LoS at 100 m, 3.5 GHz: d_3D = 100.36 m, breakpoint 4 x 9 x 0.5 x 3.5 GHz / c
    # = 210 m, so PL = 32.4 + 21 log10(100.36) + 20 log10(3.5) = 85.3 dB; NLoS 104.6 dB.
    # UMa at 60 m and 28 GHz fails with Sionna 1.2's own scenario (its distance_3d is
    # the 2D distance: 96.06 instead of 96.74 dB LoS), see phy.topology.
    from phy.topology import path_loss_db

    got = path_loss_db(scenario, fc_ghz, d_2d, los)
    assert got == pytest.approx(_path_loss_by_hand(scenario, d_2d, fc_ghz, los), abs=0.5)


def _rma_path_loss_by_hand(d_2d: float, fc_ghz: float, los: bool) -> float:
    # 38.901 Table 7.4.1-1, RMa, with Sionna's (and the table's default) average
    # building height h = 5 m and street width W = 20 m, h_BS = 35 m, h_UT = 1.5 m.
    h, w, h_bs, h_ut = 5.0, 20.0, 35.0, 1.5
    d_3d = math.hypot(d_2d, h_bs - h_ut)
    d_bp = 2 * math.pi * h_bs * h_ut * fc_ghz * 1e9 / 299_792_458.0  # actual heights

    def pl1(d: float) -> float:
        return (
            20 * math.log10(40 * math.pi * d * fc_ghz / 3)
            + min(0.03 * h**1.72, 10) * math.log10(d)
            - min(0.044 * h**1.72, 14.77)
            + 0.002 * math.log10(h) * d
        )

    pl_los = pl1(d_3d) if d_2d <= d_bp else pl1(d_bp) + 40 * math.log10(d_3d / d_bp)
    if los:
        return pl_los
    pl_nlos = (
        161.04
        - 7.1 * math.log10(w)
        + 7.5 * math.log10(h)
        - (24.37 - 3.7 * (h / h_bs) ** 2) * math.log10(h_bs)
        + (43.42 - 3.1 * math.log10(h_bs)) * (math.log10(d_3d) - 3)
        + 20 * math.log10(fc_ghz)
        - (3.2 * math.log10(11.75 * h_ut) ** 2 - 4.97)
    )
    return max(pl_los, pl_nlos)


@pytest.mark.parametrize("los", [True, False])
@pytest.mark.parametrize(("d_2d", "fc_ghz"), [(300.0, 3.5), (5000.0, 3.5), (2000.0, 0.7)])
def test_one_rma_user_at_a_known_distance_gets_the_38901_path_loss(los, d_2d, fc_ghz):
    # e.g. 300 m at 3.5 GHz: d_3D = 301.9 m, before the breakpoint (2 pi x 35 x 1.5 x
    # 3.5 GHz / c = 3851 m): LoS 20 log10(40 pi x 301.9 x 3.5 / 3) + 0.48 log10(301.9)
    # - 0.70 + 0.42 = 93.8 dB; NLoS 110.3 dB. 5000 m and 2000 m at 0.7 GHz (breakpoint
    # 770 m) are past the breakpoint, where LoS falls by 40 dB a decade.
    from phy.topology import path_loss_db

    got = path_loss_db("rma", fc_ghz, d_2d, los)
    assert got == pytest.approx(_rma_path_loss_by_hand(d_2d, fc_ghz, los), abs=0.5)


def test_link_budget_snr_and_a_seeded_drop():
    from phy.topology import drop_users, link_snr_db, noise_power_dbm, sub_band_hz

    # 4 RBs x 12 x 30 kHz = 1.44 MHz; kTB + NF = -174 + 61.58 + 7 = -105.42 dBm;
    # 23 dBm over 100 dB of loss: 23 - 100 + 105.42 = 28.42 dB.
    band = sub_band_hz(LinkConfig(rb_per_user=4, subcarrier_spacing_khz=30.0))
    assert band == 1.44e6
    assert noise_power_dbm(band, 7.0) == pytest.approx(-105.42, abs=0.01)
    assert link_snr_db(23.0, 100.0, band, 7.0) == pytest.approx(28.42, abs=0.01)
    drop = drop_users("umi", 6, 3.5, seed=3, min_distance_m=20.0, max_distance_m=150.0)
    again = drop_users("umi", 6, 3.5, seed=3, min_distance_m=20.0, max_distance_m=150.0)
    np.testing.assert_array_equal(drop.positions_m, again.positions_m)
    np.testing.assert_array_equal(drop.loss_db, again.loss_db)
    assert drop.distance_3d_m.shape == (6,)
    # in the sector: at least 20 m away, at most 150 m on the ground
    assert (drop.distance_3d_m >= 20.0 - 1e-9).all() and (drop.distance_2d_m <= 150.0 + 1e-6).all()
    # every outdoor user's path loss is its LoS state's formula at its distance
    for k in np.flatnonzero(~drop.indoor):
        d2, h = float(drop.distance_2d_m[k]), float(drop.positions_m[k, 2])
        want = _path_loss_by_hand("umi", d2, 3.5, bool(drop.los[k]), h)
        assert drop.path_loss_db[k] == pytest.approx(want, abs=0.5)


@pytest.mark.parametrize(
    "settings",
    [
        {"channel": "tdl-a"},
        {"channel": "tdl-d"},  # line of sight
        {"channel": "rayleigh"},
        {"channel": "tdl-a", "channel_normalization": "slot"},
        {"channel": "tdl-c", "bs_antennas": 2, "rx_correlation": 0.5},
    ],
)
def test_static_channel_one_symbol_response_equals_ofdm_channel(eager, settings):
    """A channel at zero speed computed for one OFDM symbol and repeated over the slot
    gives what Sionna's OFDMChannel gives from the same random draws (the model at
    every symbol): the same h on every RE, the same received grid."""
    config = LinkConfig(**settings)
    model = build_channel_model(config, "uplink")
    rg = build_resource_grid(config)
    propagation = Propagation(config, rg, model, num_rx_ant=config.bs_antennas)
    assert propagation._static_frequency
    shape = [64, 1, 1, config.num_ofdm_symbols, config.num_subcarriers]
    rng = np.random.default_rng(0)
    x = tf.complex(*(tf.constant(rng.normal(size=shape), tf.float32) for _ in range(2)))
    no = tf.fill([64], 0.1)
    set_seed(7)
    y, h, _ = propagation(x, no)
    propagation._static_frequency = False
    set_seed(7)
    y_ref, h_ref, _ = propagation(x, no)
    assert h.shape == h_ref.shape and y.shape == y_ref.shape
    np.testing.assert_allclose(h.numpy(), h_ref.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-5, atol=1e-5)
    assert float(tf.reduce_mean(tf.abs(h - h[:, :, :, :, :, :1]))) == 0.0  # static


def test_moving_or_clustered_channels_keep_the_per_symbol_model():
    for settings in ({"channel": "tdl-a", "speed_kmh": 30.0}, {"channel": "cdl-a"}):
        config = LinkConfig(**settings)
        model = build_channel_model(config, "uplink")
        propagation = Propagation(config, build_resource_grid(config), model)
        assert not propagation._static_frequency


# ---------------------------------------------------- draws made ahead of calls


@pytest.mark.parametrize(
    "keys",
    [{"channel": "tdl-a", "csi": "ls"}, {"channel": "tdl-c", "csi": "ls", "bs_antennas": 2}],
    ids=["tdl-a", "tdl-c-2-antennas"],
)
def test_draws_made_ahead_are_the_draws_a_call_makes(keys):
    """One call's channels and noise drawn ahead (Link.draw) give that call bit for bit
    what it computes drawing them itself from the same seed (the graph draws them
    in the same order: channel, then noise), and the compiled link computes the
    same from them to rounding."""
    config = LinkConfig(**keys)
    link = Link(config, 64, jit_compile=False)
    assert link.can_draw_ahead
    rg = link.resource_grid
    f = gaussian_features(2, 40, 64)
    set_seed(5)
    own = link(f, [5.0, 15.0])
    set_seed(5)
    h, noise = link.draw(1, 40, num_users=2)
    slots, antennas = 2 * link.num_slots(40), config.bs_antennas
    assert h.shape == [1, slots, 1, antennas, 1, 1, 1, rg.fft_size]
    assert noise.shape == [1, slots, 1, antennas, rg.num_ofdm_symbols, rg.fft_size]
    ahead = link(f, [5.0, 15.0], draws=(h[0], noise[0]))
    np.testing.assert_array_equal(ahead.numpy(), own.numpy())
    compiled = Link(config, 64, jit_compile=True)
    again = compiled(f, [5.0, 15.0], draws=(h[0], noise[0]))
    np.testing.assert_allclose(again.numpy(), own.numpy(), rtol=1e-4, atol=1e-4)
    # Several calls drawn at once: each its own channels and noise.
    h3, noise3 = link.draw(3, 40, num_users=2)
    assert h3.shape[0] == noise3.shape[0] == 3
    assert not np.allclose(h3[0].numpy(), h3[1].numpy())
    assert not np.allclose(noise3[1].numpy(), noise3[2].numpy())
    with pytest.raises(ValueError, match="slots"):
        link(f[:1], 5.0, draws=(h[0], noise[0]))  # drawn for 2 users, called with 1


def test_draws_made_ahead_in_rayleigh_fading_match_theory(rayleigh_small_link):
    """Biased-MMSE NMSE in Rayleigh block fading with perfect CSI, N0 e^N0 E1(N0),
    over four calls whose fades and noise were drawn ahead in one go; the drawn
    noise has unit variance per complex RE."""
    link = rayleigh_small_link
    num_samples = 2500 * link.packing.samples_per_slot  # 4 x 2500 fades per user
    h, noise = link.draw(4, num_samples, num_users=3)
    np.testing.assert_allclose(np.mean(np.abs(noise.numpy()) ** 2), 1.0, rtol=0.01)
    np.testing.assert_allclose(np.mean(np.abs(h.numpy()) ** 2), 1.0, rtol=0.02)
    snr = np.array([0.0, 10.0, 20.0])
    n0 = noise_variance(snr)
    nmse = np.mean(
        [
            link(
                gaussian_features(3, num_samples, 8),
                list(snr),
                measure=True,
                draws=(h[i], noise[i]),
            ).nmse.numpy()
            for i in range(4)
        ],
        axis=0,
    )
    np.testing.assert_allclose(nmse, n0 * np.exp(n0) * exp1(n0), rtol=0.10)


@pytest.mark.parametrize(
    "keys, direction, can",
    [
        ({"channel": "tdl-a"}, "uplink", True),
        ({"channel": "rayleigh"}, "downlink", True),
        ({"channel": "awgn"}, "uplink", False),
        ({"channel": "tdl-a", "domain": "time"}, "uplink", False),
        ({"channel": "tdl-a", "speed_kmh": 30.0}, "uplink", False),
        ({"channel": "cdl-a"}, "uplink", False),
        ({"channel": "tdl-a", "bs_antennas": 2}, "downlink", False),  # precoded (MRT)
        ({"channel": "tdl-a", "scheme": "digital"}, "uplink", False),
    ],
)
def test_which_links_draw_ahead(keys, direction, can):
    """Only a static channel in the frequency domain carrying analog features draws
    ahead; the others say so and refuse."""
    from phy.digital import build_link

    link = build_link(LinkConfig(**keys), 64, direction)
    assert link.can_draw_ahead is can
    if not can:
        with pytest.raises(ValueError, match="cannot draw ahead"):
            link.draw(2, 16)
