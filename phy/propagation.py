"""The radio channel between the transmitted and the received resource grid.

Frequency domain (default): Sionna's ``OFDMChannel`` (one tap per RE, no ISI
or ICI). Time domain: ``OFDMModulator`` with the cyclic prefix, Sionna's
``GenerateTimeChannel`` + ``ApplyTimeChannel`` (discrete-time sinc-interpolated
taps from ``l_min = -6`` to ``l_max``, Sionna's recommended lags for the
model's largest delay) and ``OFDMDemodulator``, so that a cyclic prefix shorter than the
channel's delay spread causes inter-symbol interference and mobility causes
inter-carrier interference. AWGN needs no channel model: noise is added on the
grid with Sionna's ``AWGN`` and h = 1 (the time-domain round trip would be the
identity).

What perfect CSI knows in the time domain: the channel's taps averaged over
each OFDM symbol's FFT window (after the cyclic prefix), turned into a
frequency response with Sionna's ``time_to_ofdm_channel``. That average is
the diagonal of the demodulated channel matrix, the gain a subcarrier's own
symbol sees; what a channel moving within the symbol leaks from the other
subcarriers (inter-carrier interference) stays in ``y`` as noise the receiver
does not know. Sionna's ``time_to_ofdm_channel`` alone reads the taps at the
window's first sample only; at high Doppler (500 km/h at 28 GHz with 15 kHz
subcarriers turns the channel's phase by most of a cycle within one symbol)
that is far from the gain the symbol sees, and the error would be an outdated
estimate, not interference.

The interference's power, averaged over the subcarriers of a symbol, is the
taps' variance within the window summed over the taps,
``sum_l mean_n |h[n, l] - hbar_l|^2``: the demodulated channel matrix has the
squared Frobenius norm of the time-varying convolution (``sum_n sum_l
|h[n, l]|^2``), of which the diagonal holds ``N sum_l |hbar_l|^2``. It is
returned as ``ici_var`` for the equalizer to count as noise (a receiver
measures its interference-plus-noise power), and it is 0 when the channel does
not move within a symbol (frequency domain, static channels).

A TDL channel at zero speed, or Rayleigh block fading, is the same in every
OFDM symbol of a slot: in the frequency domain its response
is computed for one symbol and repeated over the slot (the same values as
``OFDMChannel``, which evaluates the model at every symbol, from the same
random draws; ``tests/test_phy.py`` compares the two), which takes the
channel's generation from about 0.34 to 0.1 ms a call for TDL-A.

Noise variance N0 is per complex RE (per sample in the time domain, which is
the same after Sionna's unitary FFT).
"""

from __future__ import annotations

import tensorflow as tf
from sionna.phy.channel import (
    AWGN,
    ApplyOFDMChannel,
    ApplyTimeChannel,
    ChannelModel,
    GenerateOFDMChannel,
    GenerateTimeChannel,
    OFDMChannel,
    cir_to_time_channel,
    time_lag_discrete_time_channel,
    time_to_ofdm_channel,
)
from sionna.phy.ofdm import OFDMDemodulator, OFDMModulator, ResourceGrid

from phy.channels import maximum_delay_s
from phy.config import LinkConfig, LinkConfigError


def static_channel(config: LinkConfig) -> bool:
    """Whether the channel model's response is the same at every time of a slot:
    every UE at zero speed, or Rayleigh block fading."""
    return config.max_speed_kmh == 0.0 or config.channel == "rayleigh"


class _OneTimeStep:
    """A channel model sampled at one time step whatever the caller asks for (for a
    static channel, :func:`static_channel`)."""

    def __init__(self, model: ChannelModel) -> None:
        self._model = model

    def __call__(self, batch_size, num_time_steps, sampling_frequency):
        return self._model(batch_size, 1, sampling_frequency)


class Propagation:
    """Apply the channel (with noise) to a batch of resource grids.

    Parameters
    ----------
    config : LinkConfig
        Uses ``domain``, ``channel_normalization`` and ``precision``.
    resource_grid : sionna.phy.ofdm.ResourceGrid
    model : sionna.phy.channel.ChannelModel or None
        None for AWGN.
    num_rx_ant : int
        Receive antennas (the model's; for AWGN, h = 1 and independent noise on each).

    Input
    -----
    x : [batch, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        Transmitted resource grids.
    no : [batch], tf.float
        Noise variance N0 of each batch example.

    Output
    ------
    y : [batch, 1, num_rx_ant, num_ofdm_symbols, fft_size], tf.complex
        Received resource grids.
    h_freq : [batch, 1, num_rx_ant, 1, 1, num_ofdm_symbols, fft_size], tf.complex
        True channel frequency response on every RE (what perfect CSI knows).
    ici_var : tf.float, [] (0: no ICI) or [batch, 1, 1, 1, 1, num_ofdm_symbols, 1]
        Inter-carrier interference power per RE of each OFDM symbol (unit-power
        symbols), broadcastable to ``h_freq``.
    """

    def __init__(
        self,
        config: LinkConfig,
        resource_grid: ResourceGrid,
        model: ChannelModel | None,
        *,
        num_rx_ant: int = 1,
    ) -> None:
        self._rg = resource_grid
        self._num_rx_ant = num_rx_ant
        self._model = model
        self._time_domain = config.domain == "time" and model is not None
        precision = config.precision
        normalize = config.channel_normalization == "slot"
        self._awgn = AWGN(precision=precision)
        if model is None:
            return
        if not self._time_domain:
            self._channel = OFDMChannel(
                channel_model=model,
                resource_grid=resource_grid,
                normalize_channel=normalize,
                return_channel=True,
                precision=precision,
            )
            # TDL and Rayleigh only: the models whose draws do not depend on the
            # number of time steps asked for (tests/test_phy.py checks them).
            family = config.channel.split("-")[0]
            self._static_frequency = static_channel(config) and family in ("tdl", "rayleigh")
            if self._static_frequency:
                self._generate_one_symbol = GenerateOFDMChannel(
                    _OneTimeStep(model), resource_grid, normalize, precision=precision
                )
                self._apply_frequency = ApplyOFDMChannel(precision=precision)
            return
        self._l_min, l_max = time_lag_discrete_time_channel(
            resource_grid.bandwidth, maximum_delay_s(model)
        )
        num_taps = l_max - self._l_min + 1
        if num_taps > resource_grid.fft_size:
            # Sionna's time_to_ofdm_channel (perfect CSI) needs the taps to fit in one FFT.
            raise LinkConfigError(
                "domain",
                config.domain,
                f"'frequency' for this grid: the discrete-time channel has {num_taps} taps "
                f"(lags {self._l_min}..{l_max}), more than fft_size = {resource_grid.fft_size}; "
                "use more subcarriers",
            )
        self._l_max = l_max
        self._normalize = normalize
        self._num_time_samples = resource_grid.num_time_samples
        # A channel that does not move is the same at every sample: one CIR
        # sample per slot is exact and saves evaluating the model (for TDL a sum
        # of sinusoids) at every one of the slot's ~num_time_samples samples.
        self._static = static_channel(config)
        self._modulator = OFDMModulator(
            cyclic_prefix_length=config.cyclic_prefix_length, precision=precision
        )
        self._generate = GenerateTimeChannel(
            channel_model=model,
            bandwidth=resource_grid.bandwidth,
            num_time_samples=self._num_time_samples,
            l_min=self._l_min,
            l_max=l_max,
            normalize_channel=normalize,
            precision=precision,
        )
        self._apply = ApplyTimeChannel(
            num_time_samples=self._num_time_samples, l_tot=num_taps, precision=precision
        )
        self._demodulator = OFDMDemodulator(
            fft_size=resource_grid.fft_size,
            l_min=self._l_min,
            cyclic_prefix_length=config.cyclic_prefix_length,
            precision=precision,
        )

    @property
    def time_domain(self) -> bool:
        """Whether the channel is simulated on the time-domain waveform."""
        return self._time_domain

    @property
    def can_draw_ahead(self) -> bool:
        """Whether :meth:`draw` can make the random part of calls ahead of them: a
        static channel in the frequency domain (TDL at zero speed, Rayleigh block
        fading), whose response is one draw per slot."""
        return self._model is not None and not self._time_domain and self._static_frequency

    def draw(self, num_slots: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The random part of ``num_slots`` slots, for :meth:`__call__`'s ``draws``.

        The channel's response on one OFDM symbol (Sionna's
        ``GenerateOFDMChannel``) and unit-variance complex noise on every received
        RE (Sionna's ``AWGN`` on a zero grid), both independent per slot: the same
        distribution as the draws a call makes itself, in another order.

        Output
        ------
        h : [num_slots, 1, num_rx_ant, 1, 1, 1, fft_size], tf.complex
        noise : [num_slots, 1, num_rx_ant, num_ofdm_symbols, fft_size], tf.complex
        """
        if not self.can_draw_ahead:
            raise ValueError(
                "only a static channel in the frequency domain (TDL at zero speed, Rayleigh "
                "block fading) draws ahead"
            )
        h = self._generate_one_symbol(num_slots)
        shape = [num_slots, 1, self._num_rx_ant, self._rg.num_ofdm_symbols, self._rg.fft_size]
        zeros = tf.zeros(tf.stack(shape), self._rg.cdtype)
        return h, self._awgn(zeros, tf.ones([], self._rg.rdtype))

    def __call__(
        self, x: tf.Tensor, no: tf.Tensor, draws: tuple[tf.Tensor, tf.Tensor] | None = None
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """``draws``: the (h, noise) of :meth:`draw` for these slots, or None: drawn here."""
        no_ici = tf.zeros([], no.dtype)
        if draws is not None:
            h_one, noise = draws
            h_freq = tf.repeat(h_one, self._rg.num_ofdm_symbols, axis=-2)
            # Sionna's AWGN: y + sqrt(N0) n, n unit-variance complex (drawn ahead).
            scale = tf.reshape(tf.cast(tf.sqrt(no), noise.dtype), [-1, 1, 1, 1, 1])
            return self._apply_frequency(x, h_freq) + scale * noise, h_freq, no_ici
        if self._model is None:
            if self._num_rx_ant > 1:
                x = tf.tile(x, [1, 1, self._num_rx_ant, 1, 1])
            y = self._awgn(x, no)
            h_freq = tf.ones_like(x)[:, :, :, tf.newaxis, tf.newaxis]
            return y, h_freq, no_ici
        if not self._time_domain:
            if self._static_frequency:
                h_freq = self._generate_one_symbol(tf.shape(x)[0])
                h_freq = tf.repeat(h_freq, self._rg.num_ofdm_symbols, axis=-2)
                return self._apply_frequency(x, h_freq, no), h_freq, no_ici
            return (*self._channel(x, no), no_ici)
        batch_size = tf.shape(x)[0]
        if self._static:
            a, tau = self._model(batch_size, 1, self._rg.bandwidth)
            h_time = cir_to_time_channel(
                self._rg.bandwidth, a, tau, self._l_min, self._l_max, self._normalize
            )
        else:
            h_time = self._generate(batch_size)
        # ApplyTimeChannel broadcasts a single-sample h_time over time.
        y_time = self._apply(self._modulator(x), h_time, no)
        # The channel output is longer by l_max - l_min samples; only the
        # slot's own samples are demodulated (the tail belongs to the next slot).
        y = self._demodulator(y_time[..., : self._num_time_samples])
        if self._static:
            # time_to_ofdm_channel reads the taps at each OFDM symbol's start.
            h_time = tf.repeat(h_time, self._num_time_samples, axis=-2)
            ici_var = no_ici
        else:
            h_time, ici_var = self._window_mean(h_time)
        h_freq = time_to_ofdm_channel(h_time, self._rg, self._l_min)
        return y, h_freq, ici_var

    def _window_mean(self, h_time: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Taps averaged over each OFDM symbol's FFT window, repeated over the symbol,
        and the interference power their variation within the window causes.

        Input
        -----
        h_time : [..., num_time_samples + l_tot - 1, l_tot], tf.complex
            From ``GenerateTimeChannel`` (the tail covers the next slot's start).

        Output
        ------
        : [..., num_time_samples, l_tot], tf.complex
            Every sample of OFDM symbol i holds the mean of the taps over
            samples ``i (N + CP) + CP`` to ``i (N + CP) + CP + N - 1`` (the
            FFT window, where ``time_to_ofdm_channel`` reads them)
        : [..., num_ofdm_symbols, 1], tf.float
            ICI power per RE: ``sum_l mean_n |h[n, l] - hbar_l|^2`` over the window
        """
        cp, n = self._rg.cyclic_prefix_length, self._rg.fft_size
        h_time = h_time[..., : self._num_time_samples, :]
        shape = tf.shape(h_time)
        per_symbol = tf.concat(
            [shape[:-2], [self._rg.num_ofdm_symbols, n + cp], shape[-1:]], axis=0
        )
        symbols = tf.reshape(h_time, per_symbol)
        window = symbols[..., cp:, :]
        mean = tf.reduce_mean(window, axis=-2, keepdims=True)
        spread = tf.reduce_mean(tf.abs(window - mean) ** 2, axis=-2)
        ici_var = tf.reduce_sum(spread, axis=-1, keepdims=True)
        return tf.reshape(tf.broadcast_to(mean, per_symbol), shape), ici_var
