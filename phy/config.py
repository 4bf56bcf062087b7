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
    users or a tuple with one value per user.
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
    precision: Literal["single", "double"] = "single"
    # Airtime of the digital baselines' payloads (FedAvg's parameters, FedProto's
    # prototypes): bits per data RE on the same grid (2: uncoded QPSK).
    baseline_bits_per_symbol: float = 2.0
    # XLA-compile the link: 2-4x faster calls on CPU for a few seconds of
    # compilation per direction and input shape (every call of a run has one of a
    # few fixed shapes: full training batches, padded evaluation batches), once
    # per process. Measured in docs/performance.md.
    jit_compile: bool = True
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

    def scheme_of(self, direction: Literal["uplink", "downlink"]) -> Scheme:
        """The transmission scheme of one direction: its own key, else ``scheme``,
        else "analog"."""
        own = self.uplink_scheme if direction == "uplink" else self.downlink_scheme
        return own or self.scheme or "analog"

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


def per_user_snr_db(snr_db: SnrDb, num_users: int) -> tuple[float, ...]:
    """Expand a scalar SNR to one value per user, or check a per-user list's length."""
    if isinstance(snr_db, tuple):
        if len(snr_db) != num_users:
            raise LinkConfigError(
                "snr_db", snr_db, f"a number or a list of exactly {num_users} values (one per user)"
            )
        return tuple(float(s) for s in snr_db)
    return (float(snr_db),) * num_users
