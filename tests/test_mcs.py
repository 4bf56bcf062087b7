"""Adaptive MCS (phy.mcs): the table's choice, the config keys, the measured cache, the radio.

A hand-made table, values chosen before the code (linear interpolation in dB):

    SNR dB        0     2     4     6     8
    qpsk r0.5     0.5   0.1   0.0   0.0   0.0
    16qam r0.5    1.0   1.0   0.5   0.1   0.0

* qpsk at 1 dB: (0.5 + 0.1) / 2 = 0.3; at 3 dB: 0.05; 16qam at 7 dB: 0.05.
* 3 dB: qpsk (0.05 < 0.1; 16qam 0.75) -> qpsk. 7 dB: both fit -> 16qam (2 bits a
  symbol against 1).
* Exactly at a threshold the BLER is 0.1, not below it: at 2 dB no MCS fits
  (robust qpsk, a warning); at 6 dB 16qam does not fit -> qpsk.
* Below the grid (-3 dB) the first point holds (qpsk 0.5): warning, qpsk;
  above it (30 dB) the last (16qam 0.0): 16qam.

Block geometry on the default grid (576 data REs a slot), B = 32 samples of
d = 64 features at 4 bits = 8192 payload bits: QPSK 1/2 carries 560 bits a
block -> 15 slots = 8640 symbols; 16-QAM 1/2 carries 1136 -> 8 slots = 4608.
"""

from __future__ import annotations

import json
import warnings

import pytest
import sionna.phy
from tiny_setting import TINY_SETTING

from phy.config import LinkConfig, LinkConfigError
from phy.mcs import (
    Effort,
    Mcs,
    McsTable,
    McsWarning,
    cached_table,
    measure_table,
    table_key,
    table_settings,
    user_configs,
)

QPSK, QAM16 = Mcs("qpsk", 0.5), Mcs("16qam", 0.5)
AWGN = {"channel": "awgn", "csi": "perfect", "jit_compile": False}


def hand_table() -> McsTable:
    curves = {QPSK: [0.5, 0.1, 0.0, 0.0, 0.0], QAM16: [1.0, 1.0, 0.5, 0.1, 0.0]}
    return McsTable(
        {"modulation": m.modulation, "code_rate": m.code_rate, "snr_db": snr, "bler": b}
        for m, blers in curves.items()
        for snr, b in zip((0.0, 2.0, 4.0, 6.0, 8.0), blers, strict=True)
    )


# ------------------------------------------------------------------ choice


def test_table_interpolates_in_db_and_holds_its_ends():
    table = hand_table()
    assert table.bler(QPSK, 1.0) == pytest.approx(0.3)
    assert table.bler(QPSK, 3.0) == pytest.approx(0.05)
    assert table.bler(QAM16, 7.0) == pytest.approx(0.05)
    assert table.bler(QPSK, -3.0) == 0.5 and table.bler(QAM16, 30.0) == 0.0
    assert table.candidates == (QPSK, QAM16)


@pytest.mark.parametrize(
    ("snr", "expected"), [(3.0, QPSK), (7.0, QAM16), (6.0, QPSK), (8.0, QAM16), (30.0, QAM16)]
)
def test_choice_is_the_fastest_mcs_below_ten_percent(snr, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning above a threshold
        assert hand_table().choose(snr) == expected


@pytest.mark.parametrize("snr", [2.0, 1.0, -3.0])
def test_below_every_threshold_the_most_robust_mcs_and_a_warning(snr):
    with pytest.warns(McsWarning, match="below every MCS"):
        assert hand_table().choose(snr) == QPSK


def test_table_csv_round_trip(tmp_path):
    table = hand_table()
    back = McsTable.read_csv(table.write_csv(tmp_path / "t.csv"))
    assert [back.choose(s) for s in (3.0, 7.0)] == [QPSK, QAM16]
    assert back.bler(QAM16, 5.0) == pytest.approx(0.3)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"mcs": "adaptive"}, "'fixed' or 'auto'"),
        ({"mcs": "auto", "scheme": "digital", "modulation": "qpsk"}, "link.modulation"),
        ({"mcs": "auto", "scheme": "digital", "code_rate": 0.5}, "link.code_rate"),
        ({"mcs": "auto"}, "both directions are analog"),
    ],
)
def test_bad_mcs_settings_name_the_key(keys, words):
    with pytest.raises(LinkConfigError, match="mcs") as err:
        LinkConfig(**keys)
    assert words in str(err.value)


def test_mcs_keys_that_are_allowed():
    assert LinkConfig(mcs="auto", scheme="digital").auto_mcs
    assert LinkConfig(mcs="auto", uplink_scheme="digital").auto_mcs
    fixed = LinkConfig(mcs="fixed", scheme="digital", modulation="qpsk")
    assert not fixed.auto_mcs and fixed.digital.modulation == "qpsk"


def test_run_config_takes_link_mcs():
    from semfed.config import load_config

    plain = load_config(None, [])
    auto = load_config(None, ["link.scheme=digital", "link.mcs=auto"])
    assert auto.link.auto_mcs and auto.hash() != plain.hash()
    with pytest.raises(Exception, match=r"link\.mcs"):
        load_config(None, ["link.scheme=digital", "link.mcs=auto", "link.modulation=qpsk"])


def test_a_digital_link_refuses_auto_mcs():
    from phy.digital import DigitalLink

    with pytest.raises(LinkConfigError, match="one MCS"):
        DigitalLink(LinkConfig(**AWGN, scheme="digital", mcs="auto"), 64)


def test_user_configs_per_direction():
    config = LinkConfig(**AWGN, mcs="auto", uplink_scheme="digital")
    up = user_configs(config, "uplink", (3.0, 7.0, 7.0), hand_table())
    assert [(c.modulation, c.code_rate, c.mcs) for c in up] == [
        ("qpsk", 0.5, None),
        ("16qam", 0.5, None),
        ("16qam", 0.5, None),
    ]
    assert up[1] == up[2]  # equal choices share a link
    # The analog downlink needs no table.
    assert user_configs(config, "downlink", (3.0, 7.0, 7.0), None) == (config,) * 3
    fixed = LinkConfig(**AWGN, scheme="digital")
    assert user_configs(fixed, "uplink", (3.0, 7.0), None) == (fixed, fixed)
    with pytest.raises(LinkConfigError, match="mcs"):
        user_configs(config, "uplink", (3.0,), None)


# ------------------------------------------------------------------ measured cache


def test_table_settings_keep_what_changes_a_block():
    base = LinkConfig(**AWGN, scheme="digital", mcs="auto")
    key = table_key(table_settings(base, "uplink"))
    same = [
        LinkConfig(**{**AWGN, "jit_compile": True}, scheme="digital", mcs="auto", quant_bits=2),
        LinkConfig(**AWGN, scheme="digital", mcs="auto", uplink_snr_db=(1.0, 2.0)),
    ]
    assert all(table_key(table_settings(c, "uplink")) == key for c in same)
    # TDL with one antenna: both directions see the same channel.
    tdl = LinkConfig(channel="tdl-a", scheme="digital", mcs="auto")
    assert table_settings(tdl, "uplink") == table_settings(tdl, "downlink")
    other = [
        LinkConfig(**AWGN, scheme="digital", mcs="auto", ldpc_iterations=5),
        LinkConfig(**{**AWGN, "csi": "ls"}, scheme="digital", mcs="auto"),
        tdl,
    ]
    assert len({key, *(table_key(table_settings(c, "uplink")) for c in other)}) == 4
    cdl = LinkConfig(channel="cdl-a", scheme="digital", mcs="auto")
    assert table_settings(cdl, "uplink") != table_settings(cdl, "downlink")


def test_small_measured_table_is_cached_and_rebuilt_when_the_link_changes(tmp_path):
    """QPSK 1/2 in AWGN: every block lost at -2 dB, none at 3 dB (the waterfall
    of tests/test_digital.py is at 0.5 to 2.5 dB)."""
    built = []

    def counting(*args):
        built.append(args[0])
        return measure_table(*args)

    small = {"candidates": [QPSK], "snrs_db": [-2.0, 3.0], "effort": Effort(20, 40, 2)}
    config = LinkConfig(**AWGN, scheme="digital", mcs="auto")
    state = sionna.phy.config.tf_rng.state.numpy().copy()
    table, path = cached_table(config, "uplink", tmp_path, build=counting, **small)
    # The caller's random stream is left where it was.
    assert (sionna.phy.config.tf_rng.state.numpy() == state).all()
    assert len(built) == 1 and path.exists()
    assert table.bler(QPSK, -2.0) == 1.0 and table.bler(QPSK, 3.0) == 0.0
    assert json.loads(path.with_suffix(".json").read_text())["link"]["channel"] == "awgn"
    # Same link (another quantizer does not matter): read back, not measured.
    again, same_path = cached_table(
        LinkConfig(**AWGN, scheme="digital", mcs="auto", quant_bits=1),
        "uplink",
        tmp_path,
        build=counting,
        **small,
    )
    assert len(built) == 1 and same_path == path
    assert again.bler(QPSK, -2.0) == 1.0 and again.choose(3.0) == QPSK
    # Another link setting: its own table.
    other = LinkConfig(**AWGN, scheme="digital", mcs="auto", ldpc_iterations=10)
    _, other_path = cached_table(other, "uplink", tmp_path, build=counting, **small)
    assert len(built) == 2 and other_path != path
    # A damaged cache file is measured again.
    path.with_suffix(".json").write_text("{")
    cached_table(config, "uplink", tmp_path, build=counting, **small)
    assert len(built) == 3


# ------------------------------------------------------------------ radio


def test_radio_gives_each_client_its_mcs_and_channel_uses():
    from semfed.radio import RadioLinks

    config = LinkConfig(**AWGN, scheme="digital", mcs="auto", quant_bits=4)
    asked = []

    def table(direction):
        asked.append(direction)
        return hand_table()

    radio = RadioLinks(config, 64, (3.0, 7.0, 30.0), (7.0, 7.0, 3.0), mcs_table=table)
    assert asked == ["uplink", "downlink"]
    assert radio.mcs_record() == {
        "uplink_mcs": ["qpsk r0.5", "16qam r0.5", "16qam r0.5"],
        "downlink_mcs": ["16qam r0.5", "16qam r0.5", "qpsk r0.5"],
    }
    assert [radio.channel_uses("uplink", 32, k) for k in range(3)] == [8640, 4608, 4608]
    assert [radio.slots("downlink", 32, k) for k in range(3)] == [8, 8, 15]
    assert radio.group(1) == radio.group(1) and radio.group(0) != radio.group(1)
    with pytest.raises(ValueError, match="name the client"):
        radio.channel_uses("uplink", 32)
    # Fixed MCS: one link a direction, no client needed, no table asked for.
    fixed = RadioLinks(LinkConfig(**AWGN, scheme="digital"), 64, (3.0, 7.0), (3.0, 7.0))
    assert fixed.channel_uses("uplink", 32) == 4608 and fixed.group(0) == fixed.group(1)


def test_auto_mcs_on_a_cell_drop_chooses_from_each_clients_drop_snr():
    """link.topology and mcs = "auto" together: each client's MCS follows its own
    drop SNR, each way (hand table: above 6 dB 16-QAM, else QPSK)."""
    from semfed.cell import resolve_drop
    from semfed.config import load_config
    from semfed.radio import RadioLinks

    overrides = ["link.topology=umi", "partition.num_clients=6", "link.channel=awgn"]
    overrides += ["link.csi=perfect", "link.scheme=digital", "link.mcs=auto"]
    config = resolve_drop(load_config(None, overrides))
    up, down = config.uplink_snrs(), config.downlink_snrs()
    assert len(set(up)) == 6  # six different SNRs, from the drop
    # This drop puts clients on both sides of 6 dB, and client 2 on different sides
    # each way (4.8 dB up, 7.0 dB down), so a mix-up of clients or directions shows.

    def by_hand(snrs):
        return ["16qam r0.5" if s > 6.0 else "qpsk r0.5" for s in snrs]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", McsWarning)
        radio = RadioLinks(config.link, 64, up, down, mcs_table=lambda d: hand_table())
    assert set(by_hand(up)) == {"qpsk r0.5", "16qam r0.5"} and by_hand(up) != by_hand(down)
    assert radio.mcs_record() == {"uplink_mcs": by_hand(up), "downlink_mcs": by_hand(down)}


@pytest.mark.slow
def test_tiny_auto_mcs_run_records_each_clients_choice(tmp_path, monkeypatch):
    """Three clients at 3, 7 and 30 dB on the hand-made table: qpsk, 16qam, 16qam
    each way; B = 16 samples x 64 features x 1 bit = 1024 bits: 2 QPSK slots
    (560 bits a block) or 1 16-QAM slot (1136), 576 REs each."""
    import semfed.radio
    from semfed.config import load_config
    from semfed.train import run_training

    monkeypatch.setattr(
        semfed.radio, "measured_mcs_table", lambda *a, **k: (hand_table(), tmp_path / "t.csv")
    )
    config = load_config(
        None,
        [
            *TINY_SETTING,
            "model.encoders=homogeneous",
            "training.rounds=1",
            "link.scheme=digital",
            "link.mcs=auto",
            "link.quant_bits=1",
            "link.uplink_snr_db=[3.0, 7.0, 30.0]",
            "link.downlink_snr_db=[3.0, 7.0, 30.0]",
        ],
    )
    summary = run_training(config, tmp_path / "run")
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    for record in (first, summary):
        assert record["uplink_mcs"] == ["qpsk r0.5", "16qam r0.5", "16qam r0.5"]
        assert record["downlink_mcs"] == record["uplink_mcs"]
        assert record["uplink_symbols_per_sample_by_client"] == [72.0, 36.0, 36.0]
    # Every client trains on the same number of full batches (32 shots x 3 ways).
    batches = first["uplink_blocks"] // 4  # 2 + 1 + 1 blocks a batch round
    assert first["uplink_symbols"] == batches * 16 * (72 + 36 + 36)


def test_link_cli_mcs_table_copies_the_cached_table(tmp_path, monkeypatch, capsys):
    """``semfed link --mcs-table`` reads the table training would use from the cache
    (here a hand-made one under the key of the configured link) and writes it out
    with its settings and plot; AWGN has one table for both directions."""
    from semfed.cli import main
    from semfed.config import load_config

    monkeypatch.setenv("SEMFED_CACHE", str(tmp_path / "cache"))
    items = ["link.channel=awgn", "link.scheme=digital", "link.mcs=auto"]
    settings = table_settings(load_config(None, items).link, "uplink")
    cached = tmp_path / "cache" / "mcs" / f"mcs_table-{table_key(settings)}.csv"
    hand_table().write_csv(cached)
    cached.with_suffix(".json").write_text(json.dumps(settings))
    argv = ["link", *(a for i in items for a in ("--set", i)), "--mcs-table"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "mcs_table.csv",
        "mcs_table.json",
        "mcs_table.png",
    ]
    assert McsTable.read_csv(out / "mcs_table.csv").choose(7.0) == QAM16
    assert "16qam r0.5" in capsys.readouterr().out
    assert main([*argv, "--snr=0:10:2", "--out", str(out)]) == 2
    assert "--mcs-table" in capsys.readouterr().err
