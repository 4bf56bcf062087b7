"""Configuration of one radio link (uplink or downlink) between a client and the BS.

The config is a frozen dataclass so that it can be hashed, written beside a run's
results and compared between runs. Every range check happens in ``__post_init__``
and raises :class:`LinkConfigError`, which names the field, the bad value and
what is allowed. ``phy`` knows nothing of learning: the number of users is not
part of this config, it is the leading dimension of the tensors given to a link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

from phy import link_budget as budget
from phy.link_budget import TOPOLOGIES, TOPOLOGY_SNRS, LinkBudget

SUBCARRIERS_PER_RB = 12

CHANNEL_MODELS: tuple[str, ...] = (
    "awgn",
    "rayleigh",
    "tdl-a",
    "tdl-b",
    "tdl-c",
    "tdl-d",
    "tdl-e",
    "cdl-a",
    "cdl-b",
    "cdl-c",
    "cdl-d",
    "cdl-e",
    "umi",
    "uma",
    "rma",
)


class LinkConfigError(ValueError):
    """A link setting outside what is allowed.

    Attributes ``key``, ``value`` and ``allowed`` let callers (for example the run
    config loader) prefix the key with its section name.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key} = {value!r} is not allowed: {allowed}")


SnrDb = float | tuple[float, ...]

Scheme = Literal["analog", "digital"]
SCHEMES: tuple[str, ...] = ("analog", "digital")
# QAM orders of the digital scheme: name -> bits per symbol.
MODULATIONS: dict[str, int] = {"qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}
FAILED_BLOCKS: tuple[str, ...] = ("zero", "keep")
# How the digital scheme picks its modulation and code rate: "fixed" takes
# link.modulation / link.code_rate, "auto" picks per user from a measured table
# (phy.mcs).
MCS_MODES: tuple[str, ...] = ("fixed", "auto")
# Code rates the 5G LDPC code (38.212, Sionna's LDPC5GEncoder) supports without
# repetition: 1/5 up to 948/1024.
CODE_RATE_RANGE: tuple[float, float] = (0.2, 0.92)


@dataclass(frozen=True)
class DigitalSettings:
    """The digital scheme's settings with every unset key at its default.

    quant_bits : int
        Bits per feature of the uniform quantizer (default 4).
    quant_clip : float
        Clipping level in standard deviations of a feature component (default 3).
    modulation : "qpsk" | "16qam" | "64qam" | "256qam"
        QAM of the coded bits (default "16qam").
    code_rate : float
        Rate k/n of the 5G LDPC code, CRC bits included in k (default 0.5).
    ldpc_iterations : int
        Belief-propagation iterations of the decoder (default 20).
    failed_block : "zero" | "keep"
        What the receiver does with the features of a block that fails its
        CRC: set them to 0, or use the decoded bits as they are (default "zero").
    """

    quant_bits: int = 4
    quant_clip: float = 3.0
    modulation: str = "16qam"
    code_rate: float = 0.5
    ldpc_iterations: int = 20
    failed_block: str = "zero"

    @property
    def bits_per_symbol(self) -> int:
        return MODULATIONS[self.modulation]


# Literal fields checked at construction too (the TOML loader checks them, but
# LinkConfig is also built directly in code).
_CHOICES: dict[str, tuple[str, ...]] = {
    "pilot_pattern": ("kronecker", "empty"),
    "csi": ("perfect", "ls"),
    "interpolation": ("nn", "lin"),
    "equalizer": ("mmse", "lmmse", "zf"),
    "domain": ("frequency", "time"),
    "channel_normalization": ("mean", "slot"),
    "precision": ("single", "double"),
    "combining": ("equalizer", "mrc"),
    "precoding": ("mrt", "none"),
    "bs_array": ("ula", "panel"),
}


@dataclass(frozen=True)
class LinkConfig:
    """OFDM link settings shared by the uplink and the downlink.

    SNR is Es/N0 per data resource element in dB with the channel normalised to
    unit mean gain. ``uplink_snr_db`` / ``downlink_snr_db`` are one value for all
    users or a tuple with one value per user. With ``topology`` set the users'
    SNRs come from a cell drop's link budgets instead (:mod:`phy.topology`,
    :attr:`link_budget`); the link itself still takes them as a [U] tensor.
    """

    # Resource grid of one user (OFDMA: each user has its own sub-band).
    rb_per_user: int = 4
    fft_size: int | None = None  # None: 12 * rb_per_user subcarriers
    subcarrier_spacing_khz: float = 30.0
    num_ofdm_symbols: int = 14
    cyclic_prefix_length: int = 6
    pilot_pattern: Literal["kronecker", "empty"] = "kronecker"
    pilot_ofdm_symbol_indices: tuple[int, ...] = (2, 11)
    # Channel model and its parameters.
    channel: str = "awgn"
    delay_spread_ns: float = 100.0
    carrier_frequency_ghz: float = 3.5
    min_speed_kmh: float = 0.0
    max_speed_kmh: float = 0.0
    # Every UE at this one speed: sets min_speed_kmh and max_speed_kmh both (so a
    # list of speeds is one key, ``--set link.speed_kmh=0,120,500``). Unset: the range.
    speed_kmh: float | None = None
    # "mean": unit mean gain over realisations, fading kept (see phy.channels);
    # "slot": Sionna's normalize_channel=True, unit energy over every slot's grid.
    channel_normalization: Literal["mean", "slot"] = "mean"
    # Receiver.
    csi: Literal["perfect", "ls"] = "perfect"
    interpolation: Literal["nn", "lin"] = "lin"
    equalizer: Literal["mmse", "lmmse", "zf"] = "mmse"
    domain: Literal["frequency", "time"] = "frequency"
    # Base station antennas (phy.antennas; the UEs have one). Uplink: SIMO,
    # "equalizer" combines the antennas in link.equalizer (Sionna's LMMSE / ZF over
    # all antennas), "mrc" combines them first by maximum ratio. Downlink: "mrt"
    # precodes by maximum ratio from the BS's CSI, "none" sends from one antenna.
    bs_antennas: int = 1
    combining: Literal["equalizer", "mrc"] = "equalizer"
    precoding: Literal["mrt", "none"] = "mrt"
    # Exponential correlation coefficient between neighbouring BS antennas (TDL).
    rx_correlation: float = 0.0
    # BS array for CDL and the 38.901 scenarios: half-wavelength ULA of omni
    # elements, or the same ULA of 3GPP 38.901 directional elements.
    bs_array: Literal["ula", "panel"] = "ula"
    # Noise.
    uplink_snr_db: SnrDb = 10.0
    downlink_snr_db: SnrDb = 10.0
    # Users dropped in one 38.901 sector (phy.topology, phy.link_budget): "umi",
    # "uma" or "rma" gives each user the SNR of its link budget (path loss and
    # shadow fading of its place in the drop) instead of uplink_snr_db /
    # downlink_snr_db; "none" (or unset) is the typed SNRs. The keys below are
    # unset (None) unless given, so that configs without them keep their hash;
    # :attr:`link_budget` gives them with their defaults.
    topology: Literal["none", "umi", "uma", "rma"] | None = None
    min_distance_m: float | None = None
    max_distance_m: float | None = None
    indoor_probability: float | None = None
    ue_tx_power_dbm: float | None = None
    bs_tx_power_dbm: float | None = None
    ue_noise_figure_db: float | None = None
    bs_noise_figure_db: float | None = None
    # "per_user": each user at its own budget's SNR; "median": every user at the
    # drop's median SNR (a uniform reference with the same drop and budget).
    topology_snr: Literal["per_user", "median"] | None = None
    precision: Literal["single", "double"] = "single"
    # Airtime of the digital baselines' payloads (FedAvg's parameters, FedProto's
    # prototypes): bits per data RE on the same grid (2: uncoded QPSK).
    baseline_bits_per_symbol: float = 2.0
    # XLA-compile the link: 2-4x faster calls on CPU for a few seconds of
    # compilation per direction and input shape (every call of a run has one of a
    # few fixed shapes: full training batches, padded evaluation batches), once
    # per process. Measured in docs/performance.md.
    jit_compile: bool = True
    # Draw the channels and noise of a client's whole local pass in one call before
    # it, each mini-batch's link call taking its share (phy.link.Link.draw): the
    # same statistics, fewer kernels in each call. Only where the channel allows it
    # (frequency domain, static TDL or Rayleigh, analog features); elsewhere, and
    # with false, each call draws its own. Unset (None) means true, so that configs
    # without the key keep their hash; :attr:`draws_ahead` gives the value.
    draw_ahead: bool | None = None
    # Transmission scheme: "analog" (features as complex symbols, the default) or
    # "digital" (quantize, CRC, 5G LDPC, QAM: phy.digital). ``scheme`` sets both
    # directions; ``uplink_scheme`` / ``downlink_scheme`` win for their own.
    # The digital keys below are unset (None) unless given, so that configs
    # without them keep their hash; :attr:`digital` gives them with defaults.
    scheme: Scheme | None = None
    uplink_scheme: Scheme | None = None
    downlink_scheme: Scheme | None = None
    quant_bits: int | None = None
    quant_clip: float | None = None
    modulation: Literal["qpsk", "16qam", "64qam", "256qam"] | None = None
    code_rate: float | None = None
    ldpc_iterations: int | None = None
    failed_block: Literal["zero", "keep"] | None = None
    # "auto": each user's digital directions take the highest-rate modulation and
    # code rate whose measured block error rate at that user's SNR is below 10 %
    # (phy.mcs); unset or "fixed": modulation and code_rate as given.
    mcs: Literal["fixed", "auto"] | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            numbers = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                raise LinkConfigError(f.name, value, "finite numbers only (no nan or inf)")
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise LinkConfigError(
                    key, getattr(self, key), "one of " + ", ".join(repr(a) for a in allowed)
                )
        if self.rb_per_user < 1:
            raise LinkConfigError("rb_per_user", self.rb_per_user, "an integer >= 1")
        if self.fft_size is not None and self.fft_size < 1:
            raise LinkConfigError("fft_size", self.fft_size, "an integer >= 1, or unset")
        if self.subcarrier_spacing_khz <= 0:
            raise LinkConfigError(
                "subcarrier_spacing_khz", self.subcarrier_spacing_khz, "a positive number"
            )
        if self.num_ofdm_symbols < 1:
            raise LinkConfigError("num_ofdm_symbols", self.num_ofdm_symbols, "an integer >= 1")
        if not 0 <= self.cyclic_prefix_length <= self.num_subcarriers:
            raise LinkConfigError(
                "cyclic_prefix_length",
                self.cyclic_prefix_length,
                f"an integer in [0, {self.num_subcarriers}] (the FFT size)",
            )
        if self.pilot_pattern == "empty":
            if self.csi == "ls":
                raise LinkConfigError(
                    "csi", self.csi, "'perfect' when pilot_pattern = 'empty' (LS needs pilots)"
                )
        else:
            idx = self.pilot_ofdm_symbol_indices
            if not idx:
                raise LinkConfigError(
                    "pilot_ofdm_symbol_indices", idx, "at least one index for 'kronecker' pilots"
                )
            for i in idx:
                if not 0 <= i < self.num_ofdm_symbols:
                    raise LinkConfigError(
                        "pilot_ofdm_symbol_indices",
                        idx,
                        f"indices in [0, {self.num_ofdm_symbols - 1}] (num_ofdm_symbols = "
                        f"{self.num_ofdm_symbols})",
                    )
            if len(set(idx)) != len(idx) or len(idx) >= self.num_ofdm_symbols:
                raise LinkConfigError(
                    "pilot_ofdm_symbol_indices",
                    idx,
                    "distinct indices leaving at least one data OFDM symbol",
                )
        if self.channel not in CHANNEL_MODELS:
            raise LinkConfigError("channel", self.channel, "one of " + ", ".join(CHANNEL_MODELS))
        if self.delay_spread_ns < 0:
            raise LinkConfigError("delay_spread_ns", self.delay_spread_ns, "a number >= 0")
        if self.carrier_frequency_ghz <= 0:
            raise LinkConfigError(
                "carrier_frequency_ghz", self.carrier_frequency_ghz, "a positive number"
            )
        if self.speed_kmh is not None:
            if self.speed_kmh < 0:
                raise LinkConfigError("speed_kmh", self.speed_kmh, "a number >= 0, or unset")
            if (self.min_speed_kmh, self.max_speed_kmh) not in ((0.0, 0.0), (self.speed_kmh,) * 2):
                raise LinkConfigError(
                    "speed_kmh",
                    self.speed_kmh,
                    f"unset when min_speed_kmh / max_speed_kmh give a range ({self.min_speed_kmh}"
                    f" / {self.max_speed_kmh}): give one speed or the range, not both",
                )
            # Frozen dataclass: the range is derived here, once.
            object.__setattr__(self, "min_speed_kmh", float(self.speed_kmh))
            object.__setattr__(self, "max_speed_kmh", float(self.speed_kmh))
        if self.min_speed_kmh < 0:
            raise LinkConfigError("min_speed_kmh", self.min_speed_kmh, "a number >= 0")
        if self.max_speed_kmh < self.min_speed_kmh:
            raise LinkConfigError(
                "max_speed_kmh",
                self.max_speed_kmh,
                f"a number >= min_speed_kmh ({self.min_speed_kmh})",
            )
        if self.baseline_bits_per_symbol <= 0:
            raise LinkConfigError(
                "baseline_bits_per_symbol",
                self.baseline_bits_per_symbol,
                "a positive number (bits per data RE; 2 is uncoded QPSK)",
            )
        self._check_antennas()
        self._check_topology()
        for key in ("uplink_snr_db", "downlink_snr_db"):
            value = getattr(self, key)
            if isinstance(value, tuple) and not value:
                raise LinkConfigError(key, value, "a number, or a non-empty list (one per user)")
        self._check_digital()

    def _check_digital(self) -> None:
        for key in ("scheme", "uplink_scheme", "downlink_scheme"):
            if getattr(self, key) not in (None, *SCHEMES):
                raise LinkConfigError(key, getattr(self, key), "'analog' or 'digital'")
        if self.modulation not in (None, *MODULATIONS):
            raise LinkConfigError(
                "modulation", self.modulation, "one of " + ", ".join(map(repr, MODULATIONS))
            )
        if self.failed_block not in (None, *FAILED_BLOCKS):
            raise LinkConfigError("failed_block", self.failed_block, "'zero' or 'keep'")
        if self.quant_bits is not None and not 1 <= self.quant_bits <= 16:
            raise LinkConfigError("quant_bits", self.quant_bits, "an integer in [1, 16]")
        if self.quant_clip is not None and not self.quant_clip > 0:
            raise LinkConfigError(
                "quant_clip", self.quant_clip, "a positive number (standard deviations)"
            )
        low, high = CODE_RATE_RANGE
        if self.code_rate is not None and not low <= self.code_rate <= high:
            raise LinkConfigError(
                "code_rate",
                self.code_rate,
                f"a number in [{low}, {high}] (the range of the 5G LDPC code)",
            )
        if self.ldpc_iterations is not None and self.ldpc_iterations < 1:
            raise LinkConfigError("ldpc_iterations", self.ldpc_iterations, "an integer >= 1")
        self._check_mcs()

    def _check_mcs(self) -> None:
        if self.mcs not in (None, *MCS_MODES):
            raise LinkConfigError("mcs", self.mcs, "'fixed' or 'auto', or unset (fixed)")
        if self.mcs != "auto":
            return
        for key in ("modulation", "code_rate"):
            if getattr(self, key) is not None:
                raise LinkConfigError(
                    "mcs",
                    self.mcs,
                    f"'fixed' or unset while link.{key} is given ({getattr(self, key)!r}): "
                    f"mcs = 'auto' chooses the {key.replace('_', ' ')} per user",
                )
        if "digital" not in (self.scheme_of("uplink"), self.scheme_of("downlink")):
            raise LinkConfigError(
                "mcs",
                self.mcs,
                "'fixed' or unset when both directions are analog (auto MCS is for the "
                "digital scheme: set link.scheme = 'digital')",
            )

    def _check_topology(self) -> None:
        if self.topology not in (None, *TOPOLOGIES):
            raise LinkConfigError(
                "topology", self.topology, "one of " + ", ".join(repr(t) for t in TOPOLOGIES)
            )
        if not self.has_topology:
            # A key that would be silently ignored is refused.
            for key in TOPOLOGY_KEYS:
                if getattr(self, key) is not None:
                    raise LinkConfigError(
                        key,
                        getattr(self, key),
                        "unset when topology is 'none' (it belongs to a cell drop: "
                        "set topology to 'umi', 'uma' or 'rma')",
                    )
            return
        for key in ("uplink_snr_db", "downlink_snr_db"):
            value = getattr(self, key)
            if isinstance(value, tuple) or value != _DEFAULT_SNR_DB:
                raise LinkConfigError(
                    key,
                    list(value) if isinstance(value, tuple) else value,
                    f"unset with topology = {self.topology!r}: the drop's link budget gives "
                    "every user's SNR (remove the key, or set topology = 'none')",
                )
        if self.topology_snr not in (None, *TOPOLOGY_SNRS):
            raise LinkConfigError(
                "topology_snr", self.topology_snr, "'per_user' or 'median', or unset"
            )
        b = self.link_budget
        if b.min_distance_m < 0:
            raise LinkConfigError("min_distance_m", self.min_distance_m, "a distance >= 0 [m]")
        if b.max_distance_m <= 0:
            raise LinkConfigError("max_distance_m", self.max_distance_m, "a distance > 0 [m]")
        # Sionna draws the users between min_distance_m and the sector's edge, whose
        # nearest point is isd / 2 = max_distance_m x sqrt(3) / 2 from the BS.
        inner_edge = b.max_distance_m * math.sqrt(3.0) / 2.0
        if b.min_distance_m >= b.max_distance_m:
            raise LinkConfigError(
                "max_distance_m",
                b.max_distance_m,
                f"a distance > min_distance_m ({b.min_distance_m:g} m): the two are inverted",
            )
        if b.min_distance_m >= inner_edge:
            key = "min_distance_m" if self.min_distance_m is not None else "max_distance_m"
            raise LinkConfigError(
                key,
                getattr(self, key),
                f"min_distance_m ({b.min_distance_m:g} m) below the sector's nearest edge, "
                f"max_distance_m x sqrt(3) / 2 = {inner_edge:.4g} m (max_distance_m = "
                f"{b.max_distance_m:.4g} m)",
            )
        if not 0.0 <= b.indoor_probability <= 1.0:
            raise LinkConfigError(
                "indoor_probability", self.indoor_probability, "a probability in [0, 1], or unset"
            )
        for key in ("ue_noise_figure_db", "bs_noise_figure_db"):
            if getattr(b, key) < 0:
                raise LinkConfigError(key, getattr(self, key), "a noise figure >= 0 dB, or unset")

    @property
    def has_topology(self) -> bool:
        """Whether the users are dropped in a cell (``topology`` is not "none")."""
        return self.topology not in (None, "none")

    @property
    def link_budget(self) -> LinkBudget:
        """The cell drop's keys, unset ones at their defaults (:mod:`phy.link_budget`)."""
        if not self.has_topology:
            raise LinkConfigError(
                "topology", self.topology, "'umi', 'uma' or 'rma' for a cell drop's link budget"
            )
        s = self.topology

        def given(key: str, default: float | str) -> float | str:
            value = getattr(self, key)
            return default if value is None else value

        return LinkBudget(
            scenario=s,
            min_distance_m=given("min_distance_m", budget.MIN_DISTANCE_M[s]),
            max_distance_m=given("max_distance_m", budget.default_max_distance_m(s)),
            indoor_probability=given("indoor_probability", budget.INDOOR_PROBABILITY[s]),
            ue_tx_power_dbm=given("ue_tx_power_dbm", budget.UE_TX_POWER_DBM),
            bs_tx_power_dbm=given("bs_tx_power_dbm", budget.BS_TX_POWER_DBM[s]),
            ue_noise_figure_db=given("ue_noise_figure_db", budget.UE_NOISE_FIGURE_DB),
            bs_noise_figure_db=given("bs_noise_figure_db", budget.BS_NOISE_FIGURE_DB),
            topology_snr=given("topology_snr", "per_user"),
        )

    def scheme_of(self, direction: Literal["uplink", "downlink"]) -> Scheme:
        """The transmission scheme of one direction: its own key, else ``scheme``,
        else "analog"."""
        own = self.uplink_scheme if direction == "uplink" else self.downlink_scheme
        return own or self.scheme or "analog"

    @property
    def draws_ahead(self) -> bool:
        """``draw_ahead`` with its default (true) when unset."""
        return self.draw_ahead is not False

    @property
    def auto_mcs(self) -> bool:
        """Whether the digital directions choose their MCS per user (``mcs = "auto"``)."""
        return self.mcs == "auto"

    @property
    def digital(self) -> DigitalSettings:
        """The digital scheme's keys, unset ones at their defaults."""
        given = {
            f.name: getattr(self, f.name)
            for f in fields(DigitalSettings)
            if getattr(self, f.name) is not None
        }
        return DigitalSettings(**given)

    def _check_antennas(self) -> None:
        if isinstance(self.bs_antennas, bool) or not isinstance(self.bs_antennas, int):
            raise LinkConfigError("bs_antennas", self.bs_antennas, "an integer >= 1")
        if self.bs_antennas < 1:
            raise LinkConfigError("bs_antennas", self.bs_antennas, "an integer >= 1")
        if not 0.0 <= self.rx_correlation < 1.0:
            raise LinkConfigError(
                "rx_correlation", self.rx_correlation, "a number in [0, 1) (exponential model)"
            )
        # A key that would be silently ignored is refused.
        if self.rx_correlation > 0 and not self.channel.startswith("tdl-"):
            raise LinkConfigError(
                "rx_correlation",
                self.rx_correlation,
                f"0 for channel = {self.channel!r} (antenna correlation is a TDL option; "
                "CDL and the 38.901 scenarios get theirs from the array, Rayleigh is i.i.d.)",
            )
        array_channels = ("cdl-", "umi", "uma", "rma")
        if self.bs_array != "ula" and not self.channel.startswith(array_channels):
            raise LinkConfigError(
                "bs_array",
                self.bs_array,
                f"'ula' for channel = {self.channel!r} (only CDL and UMi / UMa / RMa have "
                "antenna geometry)",
            )

    @property
    def num_subcarriers(self) -> int:
        """Subcarriers of one user's resource grid (the FFT size)."""
        return self.fft_size if self.fft_size is not None else SUBCARRIERS_PER_RB * self.rb_per_user

    @property
    def num_pilot_symbols(self) -> int:
        return 0 if self.pilot_pattern == "empty" else len(self.pilot_ofdm_symbol_indices)

    @property
    def num_data_res(self) -> int:
        """Data resource elements per slot of one user."""
        return (self.num_ofdm_symbols - self.num_pilot_symbols) * self.num_subcarriers


# The keys of a cell drop besides ``topology`` (phy.link_budget).
TOPOLOGY_KEYS: tuple[str, ...] = (
    "min_distance_m",
    "max_distance_m",
    "indoor_probability",
    "ue_tx_power_dbm",
    "bs_tx_power_dbm",
    "ue_noise_figure_db",
    "bs_noise_figure_db",
    "topology_snr",
)
_DEFAULT_SNR_DB = LinkConfig.__dataclass_fields__["uplink_snr_db"].default


def per_user_snr_db(snr_db: SnrDb, num_users: int) -> tuple[float, ...]:
    """Expand a scalar SNR to one value per user, or check a per-user list's length."""
    if isinstance(snr_db, tuple):
        if len(snr_db) != num_users:
            raise LinkConfigError(
                "snr_db", snr_db, f"a number or a list of exactly {num_users} values (one per user)"
            )
        return tuple(float(s) for s in snr_db)
    return (float(snr_db),) * num_users
