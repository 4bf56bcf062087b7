"""The OFDM link between U users and the base station, batched and differentiable.

One call sends a batch of real feature vectors per user, float [U, B, d], and
returns what the receiver recovers, float [U, B, d]:

1. each vector is power-normalised (:func:`normalize_power`) and becomes d/2
   complex symbols ``f[2k] + j f[2k+1]`` with unit mean power;
2. each user's samples fill its slots, ``floor(num_data_res / (d/2))`` samples
   per slot, the last slot zero-padded (:class:`~phy.resource_grid.SlotPacking`);
3. all slots of all users go through ONE batched Sionna chain (batch
   ``U * num_slots``): ``ResourceGridMapper`` -> channel (``phy.propagation``)
   with noise N0 = 10^(-SNR/10) of the slot's user -> CSI (``phy.estimation``)
   -> equalizer (``phy.equalization``), which also extracts the data REs.
   With an N_r-antenna BS (``link.bs_antennas``) the uplink receives on N_r
   antennas, estimates each and combines them (``phy.combining``), and the
   downlink precodes by maximum ratio (``phy.antennas``);
4. the padding is dropped and the symbols become real vectors again.

Users are orthogonal (OFDMA: each on its own sub-band, so no inter-user
interference by construction) and every slot of every user has its own
independent channel realisation. SNR is Es/N0 per data RE with Es = 1 and the
channel at unit mean gain.

Randomness (bits, channels, noise) comes from Sionna's global generator
``sionna.phy.config.tf_rng``: seed it before a call to make the call
reproducible, with :func:`phy.seeding.set_seed` (``sionna.phy.config.seed = n``
works too, but nearby n give overlapping streams, see ``phy.seeding``).
The Sionna chain runs inside a ``tf.function`` that is traced once per input
shape (U, B).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sionna.phy
import tensorflow as tf
from sionna.phy.mapping import BinarySource, Demapper, Mapper
from sionna.phy.ofdm import ResourceGridMapper

from phy.antennas import build_propagation
from phy.channels import SingleSectorChannel, build_channel_model
from phy.combining import build_combiner
from phy.config import LinkConfig, LinkConfigError, per_user_snr_db
from phy.equalization import Equalizer
from phy.estimation import ChannelEstimator
from phy.features import features_to_symbols, normalize_power, symbols_to_features
from phy.inline import inlining_constants
from phy.resource_grid import SlotPacking, build_resource_grid

__all__ = ["Downlink", "Link", "LinkOutput", "QpskOutput", "Uplink", "normalize_power"]

Direction = Literal["uplink", "downlink"]
SnrArg = float | Sequence[float] | tf.Tensor | np.ndarray | None


@dataclass(frozen=True)
class LinkOutput:
    """What one measured link call returns.

    Attributes
    ----------
    received : [U, B, d], dtype of the input features
        Received feature vectors (estimates of ``sent``).
    sent : [U, B, d], same dtype
        The power-normalised vectors that were transmitted.
    nmse : [U], tf.float
        ``sum ||received - sent||^2 / sum ||sent||^2`` per user.
    post_eq_snr_db : [U], tf.float
        Measured signal power over error power of the equalised data symbols
        per user, in dB. For unit-power features this is ``-10 log10(nmse)``.
    """

    received: tf.Tensor
    sent: tf.Tensor
    nmse: tf.Tensor
    post_eq_snr_db: tf.Tensor


@dataclass(frozen=True)
class QpskOutput:
    """QPSK validation run over the link (see :meth:`Link.transmit_qpsk`).

    Attributes
    ----------
    bits, bits_hat : [U, B, d], tf.float
        Sent bits and hard decisions.
    symbols, symbols_hat : [U, B, d / 2], tf.complex
        Sent QPSK symbols (unit power) and equalised estimates.
    """

    bits: tf.Tensor
    bits_hat: tf.Tensor
    symbols: tf.Tensor
    symbols_hat: tf.Tensor


class Link:
    """A batched, differentiable Sionna OFDM link for U orthogonal users.

    Parameters
    ----------
    config : LinkConfig
        Grid, channel model, CSI, equalizer, domain and default SNRs.
    feature_dim : int
        d, even; a sample of d real values is d/2 complex symbols and must fit
        in one slot.
    direction : "uplink" | "downlink"
        Sets the default SNR (``config.uplink_snr_db`` or
        ``config.downlink_snr_db``) and which end transmits for CDL and the
        38.901 scenario models. Each Link has its own channel.
    jit_compile : bool or None
        Compile the Sionna chain with XLA; None (default) takes
        ``config.jit_compile``. On CPU XLA runs the link 2 to 4 times faster,
        but compiling takes 5 to 20 s per input shape (more when differentiated)
        and its random streams differ from the plain graph's (both are
        reproducible with a seed); see ``phy.bench``.

    Input (call)
    ------------
    features : [U, B, d], tf.float
        Real feature vectors; need not be normalised (they are, per sample).
    snr_db : None | float | sequence of U floats | tf.float [] or [U]
        Es/N0 per data RE of each user [dB]; None takes the config's value
        for this direction. ``float("inf")`` means no noise.
    measure : bool
        Return a :class:`LinkOutput` instead of the received tensor.
    draws : (h, noise) or None
        This call's channels and noise, made ahead by :meth:`draw` (one call's
        share, ``(h[i], noise[i])``), where :attr:`can_draw_ahead`; None (the
        default): the call draws its own.

    Output
    ------
    : [U, B, d], dtype of ``features``, or LinkOutput when ``measure``
        Received, power-normalised feature vectors. Differentiable w.r.t.
        ``features``.
    """

    def __init__(
        self,
        config: LinkConfig,
        feature_dim: int,
        direction: Direction = "uplink",
        *,
        jit_compile: bool | None = None,
    ) -> None:
        if direction not in ("uplink", "downlink"):
            raise LinkConfigError("direction", direction, "'uplink' or 'downlink'")
        self.config = config
        self.feature_dim = feature_dim
        self.direction = direction
        self.packing = SlotPacking.for_config(config, feature_dim)
        self.resource_grid = build_resource_grid(config)
        precision = config.precision
        self._rdtype = self.resource_grid.rdtype
        self._cdtype = self.resource_grid.cdtype
        # Created here so that no tf.function has to create the generator's variable.
        _ = sionna.phy.config.tf_rng
        self._mapper = ResourceGridMapper(self.resource_grid, precision=precision)
        model = build_channel_model(config, direction)
        self._propagation = build_propagation(config, self.resource_grid, model, direction)
        self._estimator = ChannelEstimator(config, self.resource_grid)
        self._combiner = build_combiner(config, direction)
        self._equalizer = Equalizer(config.equalizer, self.resource_grid, precision)
        self._bits = BinarySource(precision=precision)
        self._qpsk = Mapper("qam", 2, precision=precision)
        self._qpsk_demapper = Demapper("app", "qam", 2, hard_out=True, precision=precision)
        if jit_compile is None:
            jit_compile = config.jit_compile
        # AutoGraph roughly triples the tracing time of the Sionna chain; only the
        # 38.901 scenario models need it (Python branches on tensors).
        autograph = isinstance(model, SingleSectorChannel)
        # How every graph of this link is compiled (subclasses add their own).
        self._compile = {"jit_compile": jit_compile, "autograph": autograph}
        self._features_fn = self._graph_function(self._features_graph)
        self._qpsk_fn = self._graph_function(self._qpsk_graph)
        if self.can_draw_ahead:
            # The same graph with the draws as inputs: its own compiled function.
            self._drawn_features_fn = self._graph_function(self._features_graph)
            # Not compiled with XLA: it is called once per pass, for any number of calls.
            # Traced with the constants inlined as the call's own graph is, so that both
            # compute the channel's response alike (to the bit, tests/test_phy.py).
            self._draw_fn = tf.function(
                inlining_constants(self._draw_graph, self, autograph=False), autograph=False
            )

    # Whether the link's calls may take draws made ahead (DigitalLink: no).
    _draws_supported = True

    # ------------------------------------------------------------------ API

    @property
    def can_draw_ahead(self) -> bool:
        """Whether :meth:`draw` can make the random part of many calls ahead of them
        (a static channel in the frequency domain: ``phy.propagation``; analog
        features only)."""
        return self._draws_supported and getattr(self._propagation, "can_draw_ahead", False)

    def draw(
        self, num_calls: int | tf.Tensor, num_samples: int, num_users: int = 1
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The channels and noise of ``num_calls`` calls of U users x B samples, drawn
        in one go from Sionna's generator; call ``i`` takes ``(h[i], noise[i])`` as its
        ``draws``. Each call's slots get independent channels and noise, as when the
        calls draw their own, so the link's statistics are the same; only the order
        in which the generator's numbers are used differs.

        Input
        -----
        num_calls : int or tf.int32 []
        num_samples, num_users : int
            B and U of each call.

        Output
        ------
        h : [num_calls, U * num_slots, 1, num_rx_ant, 1, 1, 1, fft_size], tf.complex
            Channel response on one OFDM symbol per slot (static channel).
        noise : [num_calls, U * num_slots, 1, num_rx_ant, num_ofdm_symbols, fft_size], tf.complex
            Unit-variance complex noise, scaled by each call's N0.
        """
        if not self.can_draw_ahead:
            raise ValueError(
                "this link cannot draw ahead (time domain, a moving or CDL channel, "
                "a precoded downlink, or a digital link)"
            )
        slots = num_users * self.packing.num_slots(num_samples)
        return self._draw_fn(tf.convert_to_tensor(num_calls, tf.int32), slots)

    @property
    def default_snr_db(self) -> float | tuple[float, ...]:
        """The config's SNR for this link's direction."""
        if self.direction == "uplink":
            return self.config.uplink_snr_db
        return self.config.downlink_snr_db

    def noise_variance(self, snr_db: SnrArg, num_users: int) -> tf.Tensor:
        """N0 = 10^(-SNR/10) per user.

        Input
        -----
        snr_db : see the class docstring
        num_users : int

        Output
        ------
        : [num_users], tf.float (the link's precision)
        """
        if snr_db is None:
            snr_db = self.default_snr_db
        if isinstance(snr_db, list | tuple):
            snr_db = per_user_snr_db(tuple(float(s) for s in snr_db), num_users)
        snr = tf.cast(tf.convert_to_tensor(snr_db), self._rdtype)
        if snr.shape.rank == 1 and snr.shape[0] is not None and snr.shape[0] != num_users:
            raise LinkConfigError(
                "snr_db",
                tuple(np.asarray(snr).tolist()) if tf.executing_eagerly() else snr.shape,
                f"a number or exactly {num_users} values (one per user)",
            )
        if snr.shape.rank not in (0, 1):
            raise LinkConfigError("snr_db", snr.shape, "a scalar or a vector of one SNR per user")
        snr = tf.broadcast_to(snr, [num_users])
        return tf.pow(tf.cast(10.0, self._rdtype), -snr / 10.0)

    def num_slots(self, num_samples: int) -> int:
        """Slots per user for B samples."""
        return self.packing.num_slots(num_samples)

    def channel_uses(self, num_samples: int) -> int:
        """Complex symbols one user sends for B samples: B * d / 2."""
        return num_samples * self.packing.symbols_per_sample

    def __call__(
        self,
        features: tf.Tensor,
        snr_db: SnrArg = None,
        *,
        measure: bool = False,
        draws: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor | LinkOutput:
        features = tf.convert_to_tensor(features)
        self._check_features(features)
        no = self.noise_variance(snr_db, features.shape[0])
        if draws is None:
            received, sent = self._features_fn(features, no)
        else:
            self._check_draws(draws, features.shape[0], features.shape[1])
            received, sent = self._drawn_features_fn(features, no, *draws)
        if not measure:
            return received
        err = tf.reduce_sum(tf.square(tf.cast(received - sent, self._rdtype)), axis=[1, 2])
        power = tf.reduce_sum(tf.square(tf.cast(sent, self._rdtype)), axis=[1, 2])
        nmse = err / power
        return LinkOutput(received, sent, nmse, _db(power / err))

    def send_gradients(
        self,
        gradients: tf.Tensor,
        snr_db: SnrArg = None,
        draws: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tf.Tensor:
        """Send cut-layer gradients with their scale as error-free side information.

        Per sample the scale ``a = ||g|| / sqrt(d)`` travels error-free and
        ``g / a`` is sent like a feature vector. ``g / a`` has unit mean power
        per real component, so the link's power normalisation sends
        ``g / (a sqrt 2)`` (unit-power complex symbols); the receiver
        multiplies by ``a sqrt 2``. Noiseless with perfect CSI this returns g.

        Input
        -----
        gradients : [U, B, d], tf.float
        snr_db : see the class docstring
        draws : one call's (h, noise) from :meth:`draw`, or None (drawn in the call)

        Output
        ------
        : [U, B, d], dtype of ``gradients``
            Received gradients.
        """
        gradients = tf.convert_to_tensor(gradients)
        self._check_features(gradients)
        d = gradients.shape[-1]
        scale = tf.norm(gradients, axis=-1, keepdims=True) / math.sqrt(d)
        received = self(tf.math.divide_no_nan(gradients, scale), snr_db, draws=draws)
        return received * scale * math.sqrt(2.0)

    def transmit_qpsk(self, num_users: int, num_samples: int, snr_db: SnrArg = None) -> QpskOutput:
        """Carry random QPSK symbols over the same grid, slots and channel.

        Each "sample" is d/2 QPSK symbols (d bits), packed like features.

        Input
        -----
        num_users, num_samples : int
            U and B.
        snr_db : see the class docstring

        Output
        ------
        : QpskOutput
            Bits and symbols sent and received; BER via
            ``sionna.phy.utils.compute_ber(out.bits, out.bits_hat)``.
        """
        no = self.noise_variance(snr_db, num_users)
        bits = self._bits([num_users, num_samples, self.feature_dim])
        return QpskOutput(bits, *self._qpsk_fn(bits, no))

    # -------------------------------------------------------------- graphs

    def _graph_function(self, graph: Callable) -> Callable:
        """``graph`` as this link's ``tf.function``, traced with the fixed tensors of
        its blocks as constants (:mod:`phy.inline`): passed as inputs, each would
        cost every compiled call a few microseconds."""
        return tf.function(
            inlining_constants(graph, self, autograph=self._compile["autograph"]), **self._compile
        )

    def _check_draws(self, draws: tuple[tf.Tensor, tf.Tensor], users: int, samples: int) -> None:
        if not self.can_draw_ahead:
            raise ValueError("this link cannot take draws made ahead (see can_draw_ahead)")
        slots = users * self.packing.num_slots(samples)
        if len(draws) != 2 or draws[0].shape[0] != slots or draws[1].shape[0] != slots:
            raise ValueError(
                f"draws for one call of {users} user(s) x {samples} samples hold {slots} "
                f"slots each (Link.draw(...)[k][i]), got shapes {[t.shape for t in draws]}"
            )

    def _check_features(self, features: tf.Tensor) -> None:
        shape = features.shape
        if shape.rank != 3 or shape[-1] != self.feature_dim or None in shape.as_list():
            raise ValueError(
                f"expected features of static shape [U, B, {self.feature_dim}], got {shape}"
            )

    def _transmit(
        self, symbols: tf.Tensor, no: tf.Tensor, draws: tuple[tf.Tensor, tf.Tensor] | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """[U, B, n] complex symbols, [U] N0 -> estimates [U, B, n] and their MSE."""
        num_users, num_samples = symbols.shape[0], symbols.shape[1]
        num_slots = self.packing.num_slots(num_samples)
        x_hat, mse = self._transmit_slots(
            self.packing.pack(symbols), tf.repeat(no, num_slots), draws
        )
        return (
            self.packing.unpack(x_hat, num_users, num_samples),
            self.packing.unpack(mse, num_users, num_samples),
        )

    def _transmit_slots(
        self,
        slots: tf.Tensor,
        no_slot: tf.Tensor,
        draws: tuple[tf.Tensor, tf.Tensor] | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The OFDM chain on filled slots: grid, channel, CSI, equalizer.

        slots complex [S, num_data_res], no_slot float [S] -> equalised data
        symbols complex [S, num_data_res] and the equalizer's MSE float [S, num_data_res].
        ``draws``: the slots' channels and noise drawn ahead (:meth:`draw`), or None.
        """
        x = self._mapper(slots[:, tf.newaxis, tf.newaxis, :])
        if draws is None:
            y, h_freq, ici_var = self._propagation(x, no_slot)
        else:
            y, h_freq, ici_var = self._propagation(x, no_slot, draws)
        h_hat, err_var = self._estimator(y, h_freq, no_slot)
        # Inter-carrier interference (time domain, moving channel) counts as noise.
        err_var = err_var + ici_var
        if self._combiner is not None:
            y, h_hat, err_var = self._combiner(y, h_hat, err_var)
        return self._equalizer(y, h_hat, err_var, no_slot)

    def _features_graph(
        self,
        features: tf.Tensor,
        no: tf.Tensor,
        h: tf.Tensor | None = None,
        noise: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        sent = normalize_power(tf.cast(features, self._rdtype))
        draws = None if h is None else (h, noise)
        symbols_hat, _ = self._transmit(features_to_symbols(sent, self._cdtype), no, draws)
        received = symbols_to_features(symbols_hat)
        return tf.cast(received, features.dtype), tf.cast(sent, features.dtype)

    def _draw_graph(self, num_calls: tf.Tensor, slots: int) -> tuple[tf.Tensor, tf.Tensor]:
        def per_call(t: tf.Tensor) -> tf.Tensor:
            return tf.reshape(t, tf.concat([[num_calls, slots], tf.shape(t)[1:]], 0))

        h, noise = self._propagation.draw(num_calls * slots)
        return per_call(h), per_call(noise)

    def _qpsk_graph(self, bits: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, ...]:
        symbols = self._qpsk(bits)
        symbols_hat, mse = self._transmit(symbols, no)
        bits_hat = self._qpsk_demapper(symbols_hat, mse)
        return bits_hat, symbols, symbols_hat


class Uplink(Link):
    """:class:`Link` from the users to the base station (features)."""

    def __init__(
        self, config: LinkConfig, feature_dim: int, *, jit_compile: bool | None = None
    ) -> None:
        super().__init__(config, feature_dim, "uplink", jit_compile=jit_compile)


class Downlink(Link):
    """:class:`Link` from the base station to the users (gradients, see
    :meth:`Link.send_gradients`)."""

    def __init__(
        self, config: LinkConfig, feature_dim: int, *, jit_compile: bool | None = None
    ) -> None:
        super().__init__(config, feature_dim, "downlink", jit_compile=jit_compile)


def _db(x: tf.Tensor) -> tf.Tensor:
    return 10.0 * tf.math.log(x) / tf.math.log(tf.constant(10.0, x.dtype))
