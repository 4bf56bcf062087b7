"""Users dropped in a 38.901 cell, as a run sees them: config keys, per-client SNRs,
seeding, and what a run records (semfed.cell, phy.topology.cell_drop)."""

from __future__ import annotations

import json
import math
import tomllib

import numpy as np
import pytest
from tiny_setting import TINY_SETTING

from semfed.config import ConfigError, load_config

# A UMi drop of 6 clients: every link-budget key at its default.
UMI = ["link.topology=umi", "partition.num_clients=6"]


def test_a_drop_gives_each_client_its_link_budget_snr():
    from phy.topology import drop_users
    from semfed.cell import drop_seed, resolve_drop

    config = resolve_drop(load_config(None, UMI))
    # The same drop, drawn again by hand from the run's drop seed.
    users = drop_users("umi", 6, 3.5, drop_seed(config), min_distance_m=10.0)
    loss = users.path_loss_db + users.shadow_fading_db
    # 4 RBs x 12 x 30 kHz = 1.44 MHz: kTB = -174 + 61.584 = -112.416 dBm.
    # Uplink: 23 dBm - loss - (kTB + 7 dB); downlink: 44 dBm (UMi, TR 38.901 Table
    # 7.8-1 at 6 GHz) - 10 log10(6) = 36.218 dBm on the client's sub-band - loss -
    # (kTB + 9 dB): 36.218 - 23 - 2 = 11.218 dB above the uplink.
    uplink = 23.0 - loss + 112.416 - 7.0
    downlink = 44.0 - 10 * math.log10(6) - loss + 112.416 - 9.0
    np.testing.assert_allclose(np.subtract(downlink, uplink), 11.218, atol=1e-3)
    np.testing.assert_allclose(config.uplink_snrs(), uplink, atol=2e-3)
    np.testing.assert_allclose(config.downlink_snrs(), downlink, atol=2e-3)
    np.testing.assert_allclose(config.drop.distance_2d_m, users.distance_2d_m, atol=1e-3)
    assert config.drop.los == tuple(bool(v) for v in users.los)
    assert config.drop.indoor == tuple(bool(v) for v in users.indoor)
    # A spread, not one SNR: a 6-user UMi drop spans tens of dB.
    assert np.ptp(config.uplink_snrs()) > 5.0


def test_the_drop_follows_partition_seed_only():
    from semfed.cell import resolve_drop

    def snrs(*extra: str) -> tuple[float, ...]:
        return resolve_drop(load_config(None, [*UMI, *extra])).uplink_snrs()

    first = snrs("partition.seed=4")
    assert snrs("partition.seed=4") == first
    assert snrs("partition.seed=4", "training.seed=9") == first
    assert snrs("partition.seed=5") != first


def test_median_mode_puts_every_client_at_the_drops_median():
    from semfed.cell import resolve_drop

    per_user = resolve_drop(load_config(None, UMI))
    median = resolve_drop(load_config(None, [*UMI, "link.topology_snr=median"]))
    assert median.drop == per_user.drop
    up = sorted(per_user.uplink_snrs())
    assert median.uplink_snrs() == ((up[2] + up[3]) / 2,) * 6
    assert set(median.downlink_snrs()) == {float(np.median(per_user.downlink_snrs()))}


def test_the_ue_power_moves_every_uplink_snr_by_as_much():
    from semfed.cell import resolve_drop

    full = resolve_drop(load_config(None, UMI))
    low = resolve_drop(load_config(None, [*UMI, "link.ue_tx_power_dbm=10.0"]))
    np.testing.assert_allclose(np.subtract(full.uplink_snrs(), low.uplink_snrs()), 13.0, atol=2e-3)
    assert low.downlink_snrs() == full.downlink_snrs()


def test_an_unresolved_drop_is_refused():
    with pytest.raises(ConfigError, match="not drawn yet"):
        load_config(None, UMI).uplink_snrs()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            [*UMI, "link.uplink_snr_db=[1, 2, 3, 4, 5, 6]"],
            "link.uplink_snr_db = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] is not allowed: unset with "
            "topology = 'umi'",
        ),
        ([*UMI, "link.downlink_snr_db=3.0"], "link.downlink_snr_db = 3.0 is not allowed"),
        (
            ["link.ue_tx_power_dbm=10.0"],
            "link.ue_tx_power_dbm = 10.0 is not allowed: unset when topology is 'none'",
        ),
        (
            [*UMI, "link.min_distance_m=80", "link.max_distance_m=50"],
            "link.max_distance_m = 50.0 is not allowed: a distance > min_distance_m (80 m)",
        ),
        # 100 m from a sector reaching 115.5 m: beyond its nearest edge (100 m).
        ([*UMI, "link.min_distance_m=100"], "link.min_distance_m = 100.0 is not allowed"),
        ([*UMI, "link.indoor_probability=1.2"], "link.indoor_probability = 1.2"),
        ([*UMI, "link.bs_noise_figure_db=-1"], "link.bs_noise_figure_db = -1.0"),
        (["link.topology=indoor"], "link.topology = 'indoor' is not allowed"),
        ([*UMI, "link.topology_snr=mean"], "link.topology_snr = 'mean' is not allowed"),
    ],
)
def test_bad_topology_settings_name_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert fragment in str(err.value)


def test_a_recorded_drop_must_match_the_one_drawn_again():
    from semfed.cell import resolve_drop
    from semfed.config import config_from_dict

    config = resolve_drop(load_config(None, UMI))
    data = config.to_dict()
    assert "uplink_snr_db" not in data["link"]  # unused with a drop: not written
    assert resolve_drop(config_from_dict(data)) == config
    data["drop"]["uplink_snr_db"][0] += 1.0
    with pytest.raises(ConfigError, match=r"drop\.uplink_snr_db = .* partition\.seed = 0"):
        resolve_drop(config_from_dict(data))
    with pytest.raises(ConfigError, match=r"\[drop\] is not allowed with link\.topology"):
        load_config(None, ["link.topology=none", "drop.los=[true]", "partition.num_clients=1"])
    # The drop is derived: it leaves the hash alone.
    assert config.hash() == load_config(None, UMI).hash()


def test_a_changed_link_budget_default_tells_old_runs_apart(monkeypatch, tmp_path):
    """The BS power went from 35 to 44 dBm once: a run made before must not pass
    for today's, by its hash (summary.json) or by its config.toml read back."""
    import phy.link_budget as budget
    from semfed.cell import resolve_drop
    from semfed.sweep import _same_run

    monkeypatch.setitem(budget.BS_TX_POWER_DBM, "umi", 35.0)
    old = resolve_drop(load_config(None, UMI))
    (tmp_path / "config.toml").write_text(old.to_toml())
    old_summary = {"config_hash": old.hash()}
    monkeypatch.setitem(budget.BS_TX_POWER_DBM, "umi", 44.0)
    planned = load_config(None, UMI).hash()
    assert old_summary["config_hash"] != planned  # the hash covers the resolved budget
    # Read back today, the old file resolves today's default (its hash matches),
    # but its recorded drop (downlink SNRs 9 dB lower) is not the one drawn today.
    assert load_config(tmp_path / "config.toml").hash() == planned
    assert not _same_run(tmp_path, old_summary, planned)
    # The current run is still itself.
    (tmp_path / "config.toml").write_text(resolve_drop(load_config(None, UMI)).to_toml())
    assert _same_run(tmp_path, {"config_hash": "from-an-older-semfed"}, planned)


def test_a_run_records_the_drop_in_config_and_round_0(tmp_path):
    from semfed.train import run_training

    settings = [s for s in TINY_SETTING if "snr_db" not in s]
    config = load_config(
        None, [*settings, "link.topology=umi", "training.rounds=2", "evaluation.every=2"]
    )
    summary = run_training(config, tmp_path)
    written = tomllib.loads((tmp_path / "config.toml").read_text())
    assert len(written["drop"]["uplink_snr_db"]) == 3 and written["link"]["topology"] == "umi"
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # Round 0 is not evaluated (every 2) but written once, with the SNRs.
    assert [r["round"] for r in records] == [0, 1]
    assert "test_acc" not in records[0] and "uplink_snr_db_per_client" not in records[1]
    assert records[0]["uplink_snr_db_per_client"] == written["drop"]["uplink_snr_db"]
    assert records[0]["downlink_snr_db_per_client"] == written["drop"]["downlink_snr_db"]
    assert summary["final_window"] == 1  # evaluated rounds only
    # Plots and compare fill the keys an older config lacks with their defaults, but
    # never the SNRs a drop decides (the run used none of the scalar defaults).
    from semfed.plot import load_runs

    (loaded,) = load_runs([tmp_path])
    assert "link.uplink_snr_db" not in loaded["config"]
    assert "link.downlink_snr_db" not in loaded["config"]
    assert loaded["config"]["link.channel"] == written["link"]["channel"]
    # The run's own config.toml resumes it (its recorded drop is checked, not refused).
    more = load_config(tmp_path / "config.toml", ["training.rounds=3"])
    assert run_training(more, tmp_path, resume=True)["rounds"] == 3


def test_semfed_link_draws_the_drop_a_run_gets(tmp_path):
    import csv

    from matplotlib.path import Path as Polygon

    from phy.drop_figure import sector_outline
    from semfed.cell import resolve_drop
    from semfed.cli import main

    argv = ["link", "--topology", "umi", "--set", "partition.num_clients=8", "--set"]
    argv += ["link.jit_compile=false", "--channel", "awgn", "--snr=10", "--samples", "64"]
    assert main([*argv, "--no-progress", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "drop.png").is_file() and (tmp_path / "drop.pdf").is_file()
    with (tmp_path / "drop.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    run = resolve_drop(load_config(None, ["link.topology=umi", "partition.num_clients=8"]))
    got = [float(r["uplink_snr_db"]) for r in rows]
    np.testing.assert_allclose(got, run.drop.uplink_snr_db, atol=1e-3)
    # Every user inside the sector drawn on the map (115.5 m reach: 200 m / sqrt(3)).
    sector = Polygon(sector_outline(200.0 / math.sqrt(3.0)))
    xy = np.array([[float(r["x_m"]), float(r["y_m"])] for r in rows])
    assert sector.contains_points(xy, radius=1e-6).all()
