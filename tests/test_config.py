"""Run config: loading, overrides and validation errors that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from semfed.cli import main
from semfed.config import ConfigError, RunConfig, config_from_dict, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def test_defaults_and_overrides():
    cfg = load_config(None, ["training.rounds=5", "link.channel=tdl-a", "data.name=mnist"])
    assert cfg.training.rounds == 5
    assert cfg.link.channel == "tdl-a"
    assert cfg.data.name == "mnist"  # a bare word falls back to a string
    assert cfg.partition.num_clients == 20


def test_int_accepted_for_float_and_list_to_tuple():
    cfg = load_config(None, ["partition.num_clients=2", "link.uplink_snr_db=[0, 5]"])
    assert cfg.link.uplink_snr_db == (0.0, 5.0)
    assert cfg.uplink_snrs() == (0.0, 5.0)
    assert cfg.downlink_snrs() == (10.0, 10.0)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("training.roundz=5", "unknown key 'training.roundz'"),
        ("trainig.rounds=5", "unknown key 'trainig'"),
        ("training.rounds='five'", "training.rounds = 'five'"),
        ("training.rounds=0", "training.rounds = 0"),
        ("training.rounds=true", "training.rounds = True"),
        ("model.feature_dim=63", "model.feature_dim = 63"),
        ("partition.alpha=0", "partition.alpha = 0.0"),
        ("partition.num_clients=0", "partition.num_clients = 0"),
        ("link.channel='tdl-z'", "link.channel = 'tdl-z'"),
        ("link.pilot_ofdm_symbol_indices=[2, 14]", "link.pilot_ofdm_symbol_indices"),
        ("link.cyclic_prefix_length=49", "link.cyclic_prefix_length = 49"),
        ("link.uplink_snr_db=[1, 2, 3]", "link.uplink_snr_db = [1.0, 2.0, 3.0]"),
        ("algorithm.scg_loss='cosine'", "algorithm.scg_loss = 'cosine'"),
        ("training.fused_adam='yes'", "training.fused_adam = 'yes'"),
        ("training", "expected section.key=value"),
    ],
)
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_channel_lists_valid_names():
    with pytest.raises(ConfigError, match="awgn, rayleigh, tdl-a"):
        load_config(None, ["link.channel=foo"])


def test_section_must_be_a_table():
    with pytest.raises(ConfigError, match=r"\[training\] must be a table"):
        config_from_dict({"training": 3})


def test_missing_and_invalid_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[training\nrounds = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_round_trip_through_toml(tmp_path):
    cfg = load_config(
        CONFIGS / "paper.toml", ["link.uplink_snr_db=[0.0]", "partition.num_clients=1"]
    )
    text = cfg.to_toml()
    again = config_from_dict(tomllib.loads(text))
    assert again == cfg
    assert again.hash() == cfg.hash()
    assert load_config(None).hash() != cfg.hash()


def test_hash_ignores_output_section():
    a = load_config(None, ["output.dir='a'"])
    b = load_config(None, ["output.dir='b'"])
    assert a.hash() == b.hash()


@pytest.mark.parametrize("name", ["paper.toml", "smoke.toml"])
def test_shipped_configs_load(name):
    cfg = load_config(CONFIGS / name)
    assert isinstance(cfg, RunConfig)


def test_paper_config_is_the_papers_setting():
    cfg = load_config(CONFIGS / "paper.toml")
    assert cfg.partition.num_clients == 20
    assert (cfg.partition.ways, cfg.partition.shots) == (5, 100)
    assert cfg.model.feature_dim == 64
    assert cfg.training.rounds == 200
    assert cfg.training.client_lr == cfg.training.server_lr == 0.001
    assert cfg.link.channel == "tdl-a"
    assert cfg.model.encoders == "heterogeneous"


def test_cli_bad_set_is_one_line(capsys):
    status = main(
        ["partition", "--config", str(CONFIGS / "smoke.toml"), "--set", "training.roundz=1"]
    )
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip().count("\n") == 0
    assert "training.roundz" in err
    assert "Traceback" not in err


def test_cli_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert "semfed" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "[10.0, nan, 0.0]"])
@pytest.mark.parametrize(
    "key",
    [
        "link.uplink_snr_db",
        "link.downlink_snr_db",
        "evaluation.snr_db",
        "link.delay_spread_ns",
        "algorithm.lam",
        "training.client_lr",
        "partition.alpha",
    ],
)
def test_non_finite_numbers_are_refused(key, value):
    if value.startswith("[") and not key.endswith("snr_db"):
        return  # lists only where lists are allowed
    with pytest.raises(ConfigError, match="finite") as err:
        load_config(None, ["partition.num_clients=3", f"{key}={value}"])
    assert str(err.value).startswith(f"{key} = ")
    assert "\n" not in str(err.value)


def test_non_finite_link_settings_are_refused_when_built_in_code():
    import dataclasses

    from phy.config import LinkConfig, LinkConfigError
    from phy.study import parse_snr_list

    for field, value in (
        ("uplink_snr_db", float("nan")),
        ("downlink_snr_db", (0.0, float("inf"))),
        ("max_speed_kmh", float("inf")),
        ("subcarrier_spacing_khz", float("nan")),
    ):
        with pytest.raises(LinkConfigError, match="finite") as err:
            dataclasses.replace(LinkConfig(), **{field: value})
        assert err.value.key == field
    for text in ("0,nan", "inf", "0:inf:5", "-inf:0:5"):
        with pytest.raises(LinkConfigError, match="finite"):
            parse_snr_list(text)


def test_cli_refuses_nan_snr_with_one_line(capsys):
    argv = ["partition", "--config", str(CONFIGS / "smoke.toml")]
    assert main([*argv, "--set", "link.uplink_snr_db=nan"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "semfed partition: error: link.uplink_snr_db = nan is not allowed: "
        "a finite number or a list of finite numbers"
    )
