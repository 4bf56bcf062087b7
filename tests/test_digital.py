"""The digital scheme (phy.digital): quantizer, QAM, 5G LDPC with CRC, lost blocks, training.

Values computed by hand before the code:

* uniform quantizer, 3 bits clipped at c = 3 / sqrt(2): step = 2c / 8 = 0.5303;
  cell centres -c + (i + 1/2) step; x = 0.1 lies in cell 4 (centre 0.2652).
* Gray-labelled 16-QAM at unit energy in AWGN, per real dimension a 4-PAM with
  levels {±1, ±3} / sqrt(10) and noise variance N0 / 2; with
  a = sqrt(Es / (5 N0)) the bit error rate is (3 Q(a) + 2 Q(3a) - Q(5a)) / 4.
  At Es/N0 = 10 dB: a = sqrt(2) = 1.4142, Q(a) = 0.07865, Q(3a) = 1.1e-5,
  Q(5a) ~ 1e-12, so BER = 0.05900.
* Rate-1/2 5G LDPC on QPSK, one codeword per slot of 576 data REs:
  n = 1152, k = 576 with CRC16, 560 payload bits. Measured over the link in
  AWGN (2000 blocks per point): BLER 0.93 at 0.5 dB, 0.47 at 1.0 dB, 0.07 at
  1.5 dB, 0 at 2.0 dB and above; a rate-1/2 code of about 1000 bits with 20
  BP iterations has its waterfall at Eb/N0 of 1 to 2 dB (Eb/N0 = Es/N0 here,
  up to the CRC's 0.1 dB), so the test asks for BLER < 1 % at 2.5 dB and > 50 %
  2 dB lower.
* 4-bit features, 16-QAM at rate 1/2: 1136 payload bits a block = 284 features,
  so B = 71 samples of d = 64 fill exactly 16 blocks and a lost block zeroes
  exactly 284 features.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.stats import norm
from tiny_setting import TINY_SETTING

from phy.config import LinkConfig, LinkConfigError
from phy.digital import CodeBlocks, DigitalLink, build_link
from phy.features import normalize_power
from phy.link import Link
from phy.quantize import UniformQuantizer
from phy.seeding import set_seed

AWGN = {"channel": "awgn", "csi": "perfect", "jit_compile": False}


def digital(**keys) -> LinkConfig:
    return LinkConfig(**{**AWGN, "scheme": "digital", **keys})


@pytest.fixture(scope="module")
def qam16_link() -> DigitalLink:
    return DigitalLink(digital(modulation="16qam", code_rate=0.5, quant_bits=4), 64)


# ------------------------------------------------------------------ config


def test_scheme_keys_resolve_per_direction():
    assert LinkConfig().scheme_of("uplink") == "analog"
    both = LinkConfig(scheme="digital")
    assert both.scheme_of("uplink") == both.scheme_of("downlink") == "digital"
    mixed = LinkConfig(scheme="digital", downlink_scheme="analog")
    assert (mixed.scheme_of("uplink"), mixed.scheme_of("downlink")) == ("digital", "analog")
    assert LinkConfig(uplink_scheme="digital").scheme_of("downlink") == "analog"
    # Unset digital keys take their defaults.
    s = LinkConfig(scheme="digital", quant_bits=2).digital
    assert (s.quant_bits, s.quant_clip, s.modulation, s.code_rate) == (2, 3.0, "16qam", 0.5)
    assert (s.ldpc_iterations, s.failed_block, s.bits_per_symbol) == (20, "zero", 4)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("scheme", "hybrid"),
        ("modulation", "8psk"),
        ("code_rate", 0.1),
        ("code_rate", 0.97),
        ("quant_bits", 0),
        ("quant_clip", 0.0),
        ("ldpc_iterations", 0),
        ("failed_block", "drop"),
    ],
)
def test_bad_digital_keys_name_the_key(key, value):
    with pytest.raises(LinkConfigError, match=key):
        LinkConfig(**{key: value})


def test_run_config_without_digital_keys_keeps_its_hash():
    """Unset digital keys are not written, so configs from before the digital
    scheme keep their hash (sweeps and --resume compare it)."""
    from semfed.config import load_config

    plain = load_config(None, [])
    assert "scheme" not in plain.to_dict()["link"]
    assert load_config(None, ["link.scheme=digital"]).hash() != plain.hash()
    with pytest.raises(Exception, match=r"link\.modulation"):
        load_config(None, ["link.modulation=8psk"])


def test_code_blocks_fill_whole_slots():
    blocks = CodeBlocks.for_config(digital(modulation="16qam", code_rate=0.5))
    # 48 subcarriers x 12 data symbols = 576 REs x 4 bits; k = 1152 with CRC16.
    assert (blocks.codeword_bits, blocks.coded_bits, blocks.info_bits) == (2304, 1152, 1136)
    assert blocks.codewords_per_slot == 1 and blocks.crc == "CRC16"
    # 256-QAM over 16 RBs: 2304 REs x 8 bits at rate 0.9 is over 8448 payload bits.
    big = CodeBlocks.for_config(digital(modulation="256qam", code_rate=0.9, rb_per_user=16))
    assert big.codewords_per_slot == 2 and big.coded_bits <= 8448 and big.crc == "CRC24A"
    assert blocks.num_slots(2 * 1136) == 2 and blocks.num_slots(2 * 1136 + 1) == 3


# ------------------------------------------------------------------ quantizer


def test_quantizer_by_hand():
    q = UniformQuantizer.for_features(3, 3.0)
    assert q.step == pytest.approx(0.53033, abs=1e-5)
    assert int(q.indices(tf.constant(0.1))) == 4
    assert float(q.quantize(tf.constant(0.1))) == pytest.approx(0.26517, abs=1e-5)
    # Clipped values land in the outer cells.
    assert q.indices(tf.constant([-9.0, 9.0])).numpy().tolist() == [0, 7]
    assert q.to_bits(tf.constant([5, 0, 7])).numpy().tolist() == [
        [1, 0, 1],
        [0, 0, 0],
        [1, 1, 1],
    ]


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_quantize_round_trip_within_half_a_step(bits):
    q = UniformQuantizer.for_features(bits, 3.0)
    x = tf.random.stateless_uniform([4000], [bits, 0], -q.clip, q.clip)
    indices = q.indices(x)
    back = q.values(q.from_bits(q.to_bits(indices)))
    assert np.array_equal(q.from_bits(q.to_bits(indices)).numpy(), indices.numpy())
    err = np.abs(back.numpy() - x.numpy())
    assert err.max() <= q.step / 2 * (1 + 1e-5)
    assert err.max() > 0.4 * q.step  # the bound is tight, not vacuous


# ------------------------------------------------------------------ link


def test_uncoded_16qam_ber_matches_closed_form(qam16_link):
    set_seed(11)
    bits, bits_hat = qam16_link.transmit_uncoded(1, 100, 10.0)  # 230,400 bits
    ber = float(tf.reduce_mean(tf.cast(bits != bits_hat, tf.float64)))
    a = math.sqrt(10.0 / 5.0)
    theory = (3 * norm.sf(a) + 2 * norm.sf(3 * a) - norm.sf(5 * a)) / 4
    assert theory == pytest.approx(0.05900, abs=1e-4)
    assert ber == pytest.approx(theory, rel=0.04)


def test_noiseless_digital_link_returns_the_quantized_features(qam16_link):
    set_seed(12)
    features = tf.random.normal([2, 40, 64])
    qam16_link.reset_counts()
    out = qam16_link(features, float("inf"), measure=True)
    q = qam16_link.quantizer
    expected = q.indices(normalize_power(features))
    assert np.array_equal(q.indices(out.received).numpy(), expected.numpy())
    np.testing.assert_allclose(out.received, q.values(expected), atol=1e-6)
    # 40 x 64 x 4 = 10,240 bits: 10 blocks of 1136 per user, none lost.
    assert qam16_link.block_counts() == (20, 0)
    assert qam16_link.channel_uses(40) == 10 * 576


def test_ldpc_rate_half_qpsk_waterfall():
    link = DigitalLink(digital(modulation="qpsk", code_rate=0.5), 64)
    assert link.blocks.info_bits == 560
    set_seed(13)

    def bler(snr_db: float) -> float:
        out = link.transmit_blocks(1, 400, snr_db)
        wrong = tf.reduce_any(out.bits != out.bits_hat, axis=-1)
        # The CRC flags exactly the wrong blocks here.
        assert np.array_equal(wrong.numpy(), ~out.crc_ok.numpy())
        return float(tf.reduce_mean(tf.cast(wrong, tf.float64)))

    assert bler(2.5) < 0.01
    assert bler(0.5) > 0.5


def test_lost_blocks_are_zeroed_and_counted(qam16_link):
    set_seed(14)
    features = tf.random.normal([1, 71, 64])  # exactly 16 blocks
    qam16_link.reset_counts()
    received = qam16_link(features, -5.0).numpy()
    assert qam16_link.block_counts() == (16, 16)
    assert not received.any()
    # Inside the waterfall some blocks fail: each zeroes its 284 features, no others.
    for snr in (5.0, 5.5, 6.0, 6.5):
        qam16_link.reset_counts()
        received = qam16_link(features, snr).numpy()
        sent, failed = qam16_link.block_counts()
        if 0 < failed < sent:
            break
    assert 0 < failed < sent == 16, "no SNR with some blocks lost"
    assert int((received == 0).sum()) == 284 * failed
    # "keep" uses the decoded bits of the failed blocks as they are.
    keep = DigitalLink(digital(failed_block="keep"), 64)
    assert keep(features, -5.0).numpy().all()


def test_build_link_picks_each_directions_scheme():
    config = LinkConfig(**AWGN, uplink_scheme="digital")
    assert type(build_link(config, 64, "uplink")) is DigitalLink
    assert type(build_link(config, 64, "downlink")) is Link
    assert Link(config, 64).channel_uses(32) == 32 * 32


def test_gradients_reach_the_encoder_through_the_digital_downlink():
    """Split learning with an ideal uplink and a digital downlink: at 20 dB the
    encoder's update is the ideal one up to 4-bit quantization; when every
    downlink block is lost the encoder receives zeros and gets no update."""
    import keras

    from semfed.algorithms.base import cut_layer_gradients
    from semfed.radio import RadioLinks

    keras.utils.set_random_seed(3)
    encoder = keras.Sequential([keras.Input([8]), keras.layers.Dense(64)])
    decoder = keras.Sequential([keras.Input([64]), keras.layers.Dense(3)])
    x = tf.random.normal([24, 8])
    y = tf.constant(np.arange(24) % 3, tf.int32)
    targets = tf.zeros([3, 64])
    radio = RadioLinks(LinkConfig(**AWGN, downlink_scheme="digital"), 64, (20.0,), (20.0,))

    def encoder_grads(downlink):
        grads = cut_layer_gradients(
            encoder, decoder, x, y, targets, None, 0.0, "mean", lambda f: f, downlink
        )[5]
        return np.concatenate([g.numpy().ravel() for g in grads])

    ideal = encoder_grads(lambda g: g)
    radio.reset_counts()
    got = encoder_grads(lambda g: radio.downlink(g[None], tf.constant([20.0]))[0])
    assert radio.block_record()["downlink_block_errors"] == 0
    cosine = got @ ideal / (np.linalg.norm(got) * np.linalg.norm(ideal))
    assert 0.97 < cosine < 1.0 - 1e-6  # close to ideal, but quantized
    lost = encoder_grads(lambda g: radio.downlink(g[None], tf.constant([-10.0]))[0])
    assert not lost.any()


def test_block_record_counts_each_client_on_a_shared_link():
    """Two clients on one 16-QAM rate-1/2 link (4-bit features: B = 71 samples
    fill exactly 16 blocks a call, header): client 0 at 20 dB loses none of its 16
    uplink blocks; client 1 at -10 dB loses all 32 of its two calls' blocks and
    all 16 of its one downlink call's. Each client is credited what its links
    counted inside its ``crediting`` block, whichever client a call named; the
    totals also hold a call outside any (uplink BLER 32 / 64); a client that sent
    nothing has no BLER; reset zeroes all."""
    from semfed.radio import RadioLinks

    config = digital(modulation="16qam", code_rate=0.5, quant_bits=4)
    radio = RadioLinks(config, 64, (20.0, -10.0), (20.0, -10.0))
    assert radio.link("uplink", 0) is radio.link("uplink", 1)  # one link, shared
    x = tf.random.normal([1, 71, 64], seed=1)
    radio.reset_counts()
    with radio.crediting(0):
        radio.uplink(x, tf.constant([20.0]), client=0)
    # the link's clients share it: a call naming client 0 inside client 1's block
    # (a compiled step traced for client 0) is client 1's traffic
    with radio.crediting(1):
        radio.uplink(x, tf.constant([-10.0]), client=1)
        radio.uplink(x, tf.constant([-10.0]), client=0)
        radio.downlink(x, tf.constant([-10.0]), client=1)
    radio.uplink(x, tf.constant([20.0]), client=0)  # no crediting: the link's total only
    record = radio.block_record()
    assert record["uplink_blocks_per_client"] == [16, 32]
    assert record["uplink_block_errors_per_client"] == [0, 32]
    assert record["uplink_bler_per_client"] == [0.0, 1.0]
    assert (record["uplink_blocks"], record["uplink_block_errors"]) == (64, 32)
    assert record["uplink_bler"] == pytest.approx(32 / 64)
    assert record["downlink_blocks_per_client"] == [0, 16]
    assert record["downlink_bler_per_client"] == [None, 1.0]
    radio.reset_counts()
    record = radio.block_record()
    assert record["uplink_blocks_per_client"] == [0, 0] and record["uplink_blocks"] == 0
    # Analog directions have no per-client block counts.
    analog = RadioLinks(LinkConfig(**AWGN), 64, (20.0,), (20.0,))
    analog.uplink(x, tf.constant([20.0]), client=0)
    assert analog.block_record() == {}


@pytest.mark.slow
def test_tiny_digital_run_records_block_errors_and_channel_uses(tmp_path):
    from semfed.config import load_config
    from semfed.train import run_training

    config = load_config(
        None,
        [
            *TINY_SETTING,
            "model.encoders=homogeneous",
            "training.rounds=1",
            "link.scheme=digital",
            "link.quant_bits=1",
            "link.modulation=16qam",
            "link.code_rate=0.5",
        ],
    )
    run_training(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    # B = 16 samples x 64 bits = 1024 bits: one block, one slot of 576 REs, per batch.
    assert record["uplink_symbols_per_sample"] == pytest.approx(576 / 16)
    assert record["downlink_symbols_per_sample"] == pytest.approx(576 / 16)
    batches = record["uplink_symbols"] // 576
    assert record["uplink_blocks"] == record["downlink_blocks"] == batches > 0
    assert record["uplink_bler"] == record["uplink_block_errors"] / batches
    assert record["uplink_block_errors"] == 0  # AWGN at 20 dB is far above the cliff
    # Each client's blocks are credited to it, though the clients share one compiled
    # step (homogeneous encoders, one link): one block a batch, so each client's count
    # is its number of batches; the per-client counts sum to the totals.
    clients = config.partition.num_clients
    assert record["uplink_blocks_per_client"] == record["downlink_blocks_per_client"]
    assert min(record["uplink_blocks_per_client"]) > 0, record["uplink_blocks_per_client"]
    for d in ("uplink", "downlink"):
        assert len(record[f"{d}_blocks_per_client"]) == clients
        assert sum(record[f"{d}_blocks_per_client"]) == record[f"{d}_blocks"]
        assert sum(record[f"{d}_block_errors_per_client"]) == record[f"{d}_block_errors"]
    assert record["test_acc"] >= 0


@pytest.mark.slow
def test_link_cli_draws_digital_beside_analog(tmp_path, monkeypatch):
    """``semfed link --set link.scheme=digital``: the analog link of the same
    channel is added; the digital rows have their MCS, BLER and coded BER.

    4-bit features clipped at 3 sigma: step = 6 sigma / 16, so the quantization
    NMSE is (6/16)^2 / 12 = 0.01172 inside the clip, plus 0.0004 from clipping
    (2 [10 Q(3) - 3 phi(3)]): 0.0121 when no block is lost."""
    import csv

    import matplotlib.pyplot as plt

    from semfed.cli import main

    figures = []
    monkeypatch.setattr(plt, "close", lambda fig, *a, **k: figures.append(fig))
    out = tmp_path / "digital"
    argv = ["link", "--set", "link.scheme=digital", "--set", "link.modulation=qpsk"]
    argv += ["--snr=-5,20", "--samples", "200", "--feature-dim", "16", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    with (out / "link.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["scheme"], r["modulation"], float(r["snr_db"])) for r in rows] == [
        ("analog", "", -5.0),
        ("analog", "", 20.0),
        ("digital", "qpsk", -5.0),
        ("digital", "qpsk", 20.0),
    ]
    low_snr, high_snr = rows[2], rows[3]
    assert (high_snr["code_rate"], high_snr["quant_bits"]) == ("0.5", "4")
    assert float(low_snr["bler"]) == 1.0 and float(low_snr["feature_nmse"]) == 1.0
    assert float(high_snr["bler"]) == 0.0 and float(high_snr["ber_coded"]) == 0.0
    assert float(high_snr["feature_nmse"]) == pytest.approx(0.0121, rel=0.1)
    assert rows[0]["bler"] == "" and float(rows[1]["feature_nmse"]) < 0.011  # analog, 20 dB
    (fig,) = figures
    assert [ax.get_ylabel() for ax in fig.axes] == [
        "feature NMSE [dB]",
        "block error rate",
        "bit error rate",
    ]
    plt.close("all")
