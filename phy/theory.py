"""Closed forms of the link's figures of merit, for the settings that have one.

What this module may touch: nothing but numbers (numpy and scipy.special); it
imports neither TensorFlow nor Sionna, so plots can draw the curves cheaply.

Conventions are the link's (``phy/link.py``): SNR is Es/N0 per data RE with
Es = 1 and the channel at unit mean gain, so N0 = 10^(-SNR/10); the feature
NMSE is the mean squared error of the equalised unit-power symbols.

=========================  =========================  ===============================
setting                    feature NMSE               uncoded QPSK BER (Gray)
=========================  =========================  ===============================
AWGN, perfect CSI          N0 (``lmmse``, ``zf``),    Q(sqrt(Es/N0))
                           N0 / (1 + N0) (``mmse``)
Rayleigh block fading,     N0 e^N0 E1(N0) (``mmse``)  (1 - sqrt(g / (1 + g))) / 2,
perfect CSI                                           g = Es/N0 / 2
=========================  =========================  ===============================

The BER holds for every equalizer: they all scale the received symbol by a
positive real factor after undoing the channel's phase, which leaves hard QPSK
decisions unchanged. An unbiased equalizer's error under Rayleigh fading has an
infinite mean (it divides by |h| near 0), so there is no NMSE to draw. The
Rayleigh forms need ``channel_normalization = "mean"``: Sionna's per-slot
normalisation removes the fading. LS CSI, the 3GPP models and everything else
have no closed form here: their curves are simulation only.

With an N-antenna base station (``bs_antennas``, i.i.d. Rayleigh, perfect CSI)
the post-combining gain is ``||h||^2 ~ Gamma(N, 1)``: :func:`mrc_qpsk_ber`
(Proakis' L-branch diversity form) and :func:`mrc_mmse_nmse`; AWGN gains N in SNR.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.integrate import quad
from scipy.special import comb, erfc, exp1
from scipy.stats import gamma

UNBIASED_EQUALIZERS = ("lmmse", "zf")


def noise_variance(snr_db: ArrayLike) -> np.ndarray:
    """N0 = 10^(-SNR/10) for Es = 1.

    Input
    -----
    snr_db : float or array [...], Es/N0 per data RE [dB]

    Output
    ------
    : float64 array [...]
    """
    return 10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 10.0)


def q_function(x: ArrayLike) -> np.ndarray:
    """Gaussian tail probability Q(x) = P(N(0, 1) > x)."""
    return 0.5 * erfc(np.asarray(x, dtype=np.float64) / np.sqrt(2.0))


def awgn_nmse(snr_db: ArrayLike, *, biased: bool) -> np.ndarray:
    """AWGN feature NMSE: N0 / (1 + N0) for the biased MMSE estimate, N0 unbiased."""
    n0 = noise_variance(snr_db)
    return n0 / (1.0 + n0) if biased else n0


def rayleigh_mmse_nmse(snr_db: ArrayLike) -> np.ndarray:
    """Biased-MMSE feature NMSE under Rayleigh fading with perfect CSI.

    E[N0 / (|h|^2 + N0)] over |h|^2 ~ Exp(1) = N0 e^N0 E1(N0) (E1: the
    exponential integral). Below -27 dB (N0 > 500) e^N0 would soon overflow,
    so the asymptotic series of e^x E1(x) takes over there (error < 1e-11).
    """
    n0 = np.atleast_1d(noise_variance(snr_db))
    out = np.empty_like(n0)
    small = n0 <= 500.0
    out[small] = n0[small] * np.exp(n0[small]) * exp1(n0[small])
    x = n0[~small]
    out[~small] = 1.0 - 1.0 / x + 2.0 / x**2 - 6.0 / x**3 + 24.0 / x**4
    return out.reshape(np.shape(snr_db))


def awgn_qpsk_ber(snr_db: ArrayLike) -> np.ndarray:
    """Uncoded Gray-mapped QPSK BER in AWGN: Q(sqrt(Es/N0))."""
    return q_function(np.sqrt(1.0 / noise_variance(snr_db)))


def rayleigh_qpsk_ber(snr_db: ArrayLike) -> np.ndarray:
    """Uncoded Gray-mapped QPSK BER under Rayleigh fading with perfect CSI.

    (1 - sqrt(g / (1 + g))) / 2 with g = Eb/N0 = Es/N0 / 2 per bit.
    """
    g = 0.5 / noise_variance(snr_db)
    return 0.5 * (1.0 - np.sqrt(g / (1.0 + g)))


def mrc_qpsk_ber(snr_db: ArrayLike, num_branches: int) -> np.ndarray:
    """Uncoded Gray-mapped QPSK BER with maximum-ratio combining of L i.i.d. Rayleigh branches.

    Proakis, Digital Communications (5th ed.), eq. 13.4-15 (BPSK with L-fold
    diversity and MRC), applied to each of QPSK's bits:
    ``P_b = ((1 - mu) / 2)^L sum_{k=0}^{L-1} C(L-1+k, k) ((1 + mu) / 2)^k``,
    ``mu = sqrt(g / (1 + g))`` with g the mean Eb/N0 per branch, Es/N0 / 2.
    L = 1 is :func:`rayleigh_qpsk_ber`. Holds for MRT over L i.i.d. transmit
    antennas with perfect CSI too (the same ``||h||^2`` gain).

    Input
    -----
    snr_db : float or array [...], Es/N0 per branch and data RE [dB]
    num_branches : int, L >= 1

    Output
    ------
    : float64 array [...]
    """
    g = 0.5 / noise_variance(snr_db)
    mu = np.sqrt(g / (1.0 + g))
    terms = sum(
        comb(num_branches - 1 + k, k) * ((1.0 + mu) / 2.0) ** k for k in range(num_branches)
    )
    return ((1.0 - mu) / 2.0) ** num_branches * terms


def mrc_mmse_nmse(snr_db: ArrayLike, num_branches: int) -> np.ndarray:
    """Biased-MMSE feature NMSE after combining L i.i.d. Rayleigh branches, perfect CSI.

    The post-combining gain ``X = ||h||^2`` is Gamma(L, 1) (sum of L unit
    exponentials), so the NMSE is ``E[N0 / (X + N0)] = E[1 / (1 + X / N0)]``,
    integrated numerically over the Gamma density (scipy ``quad``). Its mean
    post-combining SNR is ``E[X] / N0 = L / N0``. L = 1 is :func:`rayleigh_mmse_nmse`
    (N0 e^N0 E1(N0)); L = 2 has the closed form ``N0 (1 - N0 e^N0 E1(N0))``.
    Inputs and output as :func:`mrc_qpsk_ber`.
    """
    n0 = np.atleast_1d(noise_variance(snr_db))
    density = gamma(num_branches)
    out = np.array(
        [
            quad(lambda x, a=a: density.pdf(x) * a / (x + a), 0.0, np.inf, limit=200)[0]
            for a in n0.ravel()
        ]
    )
    return out.reshape(np.shape(snr_db))


def jakes_ici_power(max_doppler_hz: float, subcarrier_spacing_hz: float, fft_size: int) -> float:
    """Inter-carrier interference power per RE of a channel with Jakes' Doppler spectrum.

    Over one OFDM symbol's FFT window of N samples (duration 1 / subcarrier
    spacing) a subcarrier's own gain is the window mean of the channel, of mean
    power ``(1 / N^2) sum_{n, m} J0(2 pi f_D (n - m) T_s)`` with
    ``T_s = 1 / (N * spacing)``; with unit mean gain the rest of the power,
    ``1 - that``, leaks to the other subcarriers as interference.

    Input
    -----
    max_doppler_hz : float
        f_D = v f_c / c.
    subcarrier_spacing_hz : float
    fft_size : int
        N.

    Output
    ------
    : float, ICI power per RE for unit-power symbols (0 for a static channel)
    """
    from scipy.special import j0

    lags = np.arange(fft_size)[:, None] - np.arange(fft_size)[None, :]
    ratio = max_doppler_hz / (subcarrier_spacing_hz * fft_size)
    return float(1.0 - np.mean(j0(2.0 * np.pi * ratio * lags)))


def rayleigh_ici_mmse_nmse(snr_db: ArrayLike, ici_power: float) -> np.ndarray:
    """Biased-MMSE feature NMSE under Rayleigh fading with perfect CSI and ICI.

    The subcarrier's own gain is Rayleigh with mean power ``1 - ici_power``;
    interference (treated as Gaussian, its power known to the receiver) adds to
    the noise, so this is :func:`rayleigh_mmse_nmse` at the effective N0
    ``(N0 + ici_power) / (1 - ici_power)``.
    """
    n0 = (noise_variance(snr_db) + ici_power) / (1.0 - ici_power)
    return rayleigh_mmse_nmse(-10.0 * np.log10(n0))


def _fading(channel: str, csi: str, channel_normalization: str) -> str | None:
    """The fading ("awgn" or "rayleigh") where a closed form applies, else None."""
    if csi != "perfect":
        return None
    if channel == "awgn":
        return "awgn"
    if channel == "rayleigh" and channel_normalization == "mean":
        return "rayleigh"
    return None


def feature_nmse(
    channel: str,
    csi: str,
    equalizer: str,
    snr_db: ArrayLike,
    *,
    channel_normalization: str = "mean",
    bs_antennas: int = 1,
) -> np.ndarray | None:
    """The closed-form feature NMSE of a setting, or None where there is none.

    Input
    -----
    channel, csi, equalizer : str
        As in :class:`~phy.config.LinkConfig`.
    snr_db : float or array [...]
    channel_normalization : "mean" | "slot"
    bs_antennas : int
        N branches combined (uplink, any combining) or precoded (MRT downlink):
        AWGN gains N in SNR, Rayleigh becomes :func:`mrc_mmse_nmse`.

    Output
    ------
    : float64 array [...] (linear, not dB), or None
    """
    fading = _fading(channel, csi, channel_normalization)
    gain_db = 10.0 * np.log10(bs_antennas)
    if fading == "awgn":
        return awgn_nmse(np.asarray(snr_db) + gain_db, biased=equalizer not in UNBIASED_EQUALIZERS)
    if fading == "rayleigh" and equalizer not in UNBIASED_EQUALIZERS:
        if bs_antennas == 1:
            return rayleigh_mmse_nmse(snr_db)
        return mrc_mmse_nmse(snr_db, bs_antennas)
    return None


def qpsk_ber(
    channel: str,
    csi: str,
    snr_db: ArrayLike,
    *,
    channel_normalization: str = "mean",
    bs_antennas: int = 1,
) -> np.ndarray | None:
    """The closed-form uncoded QPSK BER of a setting (any equalizer), or None.

    Input
    -----
    channel, csi : str
    snr_db : float or array [...]
    channel_normalization : "mean" | "slot"
    bs_antennas : int
        N i.i.d. branches (see :func:`feature_nmse`).

    Output
    ------
    : float64 array [...], or None
    """
    fading = _fading(channel, csi, channel_normalization)
    if fading == "awgn":
        return awgn_qpsk_ber(np.asarray(snr_db) + 10.0 * np.log10(bs_antennas))
    if fading == "rayleigh":
        return mrc_qpsk_ber(snr_db, bs_antennas)
    return None
