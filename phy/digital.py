"""The digital separation scheme on the same OFDM link: quantize, CRC, 5G LDPC, QAM.

One call sends a batch of real feature vectors per user, float [U, B, d], and
returns the receiver's dequantized estimates, float [U, B, d]:

1. each vector is power-normalised (:func:`~phy.features.normalize_power`, as
   in the analog scheme); each of its d components is quantized to
   ``quant_bits`` bits after clipping at ``quant_clip`` standard deviations
   (:class:`~phy.quantize.UniformQuantizer`): a user's B * d * quant_bits
   payload bits in sample order;
2. the payload is cut into code blocks of ``info_bits`` bits (the last one
   zero-padded); each block gets a CRC (Sionna's ``CRCEncoder``: CRC16, or
   CRC24A above 3824 bits, as 38.212 picks for a transport block) and is
   encoded by Sionna's ``LDPC5GEncoder`` at ``code_rate`` into a codeword that,
   mapped to ``modulation`` (Sionna's ``Mapper``), fills a whole slot
   (:class:`CodeBlocks`; a slot too large for one codeword holds several);
3. the slots go through the link's own OFDM chain (``Link._transmit_slots``:
   resource grid and pilots, channel and noise, CSI, equalizer);
4. Sionna's ``Demapper`` computes LLRs from the de-biased equalised symbols and
   the equalizer's effective noise variance, ``LDPC5GDecoder`` decodes
   (``ldpc_iterations``), ``CRCDecoder`` flags the failed blocks;
5. the bits become cell centres again. With ``failed_block = "zero"`` every
   feature with a bit in a failed block is 0 (the receiver knows the block was
   lost); with ``"keep"`` the decoded bits are used as they are.

The biased ``mmse`` equalizer of the analog scheme is a shrunk LMMSE estimate
with the same information; the demapper needs the de-biased one, so a digital
link configured with ``mmse`` equalises with ``lmmse``.

Every call adds its code blocks and those that failed their CRC to counters
(:meth:`DigitalLink.block_counts`), so a training round can report its block
error rate; a caller that knows which user sent counts per user from their
difference around its calls. The chain is not
differentiable (quantizer, hard decisions): the training code never
differentiates the channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Demapper, Mapper

from phy.config import LinkConfig, LinkConfigError
from phy.equalization import Equalizer
from phy.features import normalize_power
from phy.link import Direction, Link, SnrArg
from phy.quantize import UniformQuantizer

__all__ = ["BlockOutput", "CodeBlocks", "DigitalLink"]

# Largest information block of the 5G LDPC code (base graph 1).
MAX_LDPC_K = 8448
# 38.212 7.2.1: a transport block of more than 3824 bits gets CRC24A, else CRC16.
CRC16_MAX_PAYLOAD = 3824
CRC_LENGTHS = {"CRC16": 16, "CRC24A": 24}


@dataclass(frozen=True)
class CodeBlocks:
    """How code blocks fill one user's slots.

    Attributes
    ----------
    num_data_res : int
        Data REs per slot.
    bits_per_symbol : int
        m of the QAM.
    codewords_per_slot : int
        C, 1 unless one codeword would carry more than 8448 information bits.
    symbols_per_codeword : int
        ``num_data_res // C`` QAM symbols (REs left over stay empty).
    codeword_bits : int
        n = ``symbols_per_codeword * m``.
    coded_bits : int
        k = round(code_rate * n): the LDPC code's information bits, CRC included.
    crc : str
        "CRC16" or "CRC24A".
    info_bits : int
        Payload bits per block, k minus the CRC.
    """

    num_data_res: int
    bits_per_symbol: int
    codewords_per_slot: int
    symbols_per_codeword: int
    codeword_bits: int
    coded_bits: int
    crc: str
    info_bits: int

    @classmethod
    def for_config(cls, config: LinkConfig) -> CodeBlocks:
        """The block geometry of ``config``'s grid, modulation and code rate.

        Raises :class:`LinkConfigError` when a codeword would be too short for
        the 5G code.
        """
        settings = config.digital
        m = settings.bits_per_symbol
        res = config.num_data_res
        per_slot = math.ceil(settings.code_rate * res * m / MAX_LDPC_K)
        symbols = res // per_slot
        n = symbols * m
        k = round(settings.code_rate * n)
        crc = "CRC24A" if k - CRC_LENGTHS["CRC24A"] > CRC16_MAX_PAYLOAD else "CRC16"
        info = k - CRC_LENGTHS[crc]
        if info < 12:
            raise LinkConfigError(
                "code_rate",
                settings.code_rate,
                f"a rate leaving at least 12 payload bits per code block ({res} data REs "
                f"of {settings.modulation} give {k} information bits, CRC included)",
            )
        return cls(res, m, per_slot, symbols, n, k, crc, info)

    def num_blocks(self, payload_bits: int) -> int:
        """Code blocks that carry some of ``payload_bits``."""
        return max(1, math.ceil(payload_bits / self.info_bits))

    def num_slots(self, payload_bits: int) -> int:
        """Slots one user needs for ``payload_bits``."""
        return math.ceil(self.num_blocks(payload_bits) / self.codewords_per_slot)


@dataclass(frozen=True)
class BlockOutput:
    """Payload bits of random code blocks and their decoded values
    (:meth:`DigitalLink.transmit_blocks`).

    Attributes
    ----------
    bits, bits_hat : [U, num_blocks, info_bits], tf.float
        Sent and decoded payload bits (CRC removed); ``sionna.phy.utils``'s
        ``compute_ber`` / ``compute_bler`` or ``sim_ber`` take them.
    crc_ok : [U, num_blocks], tf.bool
        Whether each block passed its CRC.
    """

    bits: tf.Tensor
    bits_hat: tf.Tensor
    crc_ok: tf.Tensor


class DigitalLink(Link):
    """A :class:`~phy.link.Link` whose features travel as quantized, LDPC-coded QAM.

    Parameters and call as :class:`~phy.link.Link` (``send_gradients`` too:
    the gradient's scale is side information, g / a is sent like features);
    the digital settings come from ``config.digital``.

    Input (call)
    ------------
    features : [U, B, d], tf.float
    snr_db : see :class:`~phy.link.Link`
    measure : bool

    Output
    ------
    : [U, B, d], dtype of ``features``, or LinkOutput when ``measure``
        Dequantized received features; NMSE and post-equalisation SNR of a
        LinkOutput include the quantization error. Not differentiable.
    """

    # Its slots carry codewords, not samples: every call draws its own channels.
    _draws_supported = False

    def __init__(self, config: LinkConfig, *args: object, **kwargs: object) -> None:
        if config.auto_mcs:
            raise LinkConfigError(
                "mcs",
                config.mcs,
                "'fixed' or unset for one link: a DigitalLink sends at one MCS (auto picks "
                "one per user, phy.mcs.user_configs; semfed link --mcs-table measures its table)",
            )
        super().__init__(config, *args, **kwargs)
        settings = config.digital
        precision = config.precision
        self.settings = settings
        self.quantizer = UniformQuantizer.for_features(settings.quant_bits, settings.quant_clip)
        self.blocks = CodeBlocks.for_config(config)
        if config.equalizer == "mmse":
            self._equalizer = Equalizer("lmmse", self.resource_grid, precision)
        m = self.blocks.bits_per_symbol
        self._crc_encoder = CRCEncoder(self.blocks.crc, precision=precision)
        self._crc_decoder = CRCDecoder(self._crc_encoder, precision=precision)
        self._ldpc_encoder = LDPC5GEncoder(
            self.blocks.coded_bits,
            self.blocks.codeword_bits,
            num_bits_per_symbol=m,
            precision=precision,
        )
        self._ldpc_decoder = LDPC5GDecoder(
            self._ldpc_encoder,
            num_iter=settings.ldpc_iterations,
            hard_out=True,
            precision=precision,
        )
        self._qam = Mapper("qam", m, precision=precision)
        self._qam_demapper = Demapper("app", "qam", m, precision=precision)
        self._qam_hard = Demapper("app", "qam", m, hard_out=True, precision=precision)
        # Code blocks sent and failed (CRC), summed over calls until reset.
        self._blocks_sent = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._blocks_failed = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._blocks_fn = self._graph_function(self._blocks_graph)
        self._uncoded_fn = self._graph_function(self._uncoded_graph)

    # ------------------------------------------------------------------ API

    def channel_uses(self, num_samples: int) -> int:
        """Complex symbols one user sends for B samples: whole slots of codewords."""
        payload = num_samples * self.feature_dim * self.quantizer.bits
        return self.blocks.num_slots(payload) * self.blocks.num_data_res

    def block_counts(self) -> tuple[int, int]:
        """(code blocks sent, blocks that failed their CRC) since the last reset."""
        return int(self._blocks_sent.numpy()), int(self._blocks_failed.numpy())

    def reset_counts(self) -> None:
        self._blocks_sent.assign(0)
        self._blocks_failed.assign(0)

    def counter_variables(self) -> list[tf.Variable]:
        """Every code-block counter of this link (for a caller that must put them back)."""
        return [self._blocks_sent, self._blocks_failed]

    def transmit_blocks(self, num_users: int, num_slots: int, snr_db: SnrArg = None) -> BlockOutput:
        """Random payload in ``num_slots`` full slots per user, coded and decoded.

        Input
        -----
        num_users, num_slots : int
        snr_db : see :class:`~phy.link.Link`

        Output
        ------
        : BlockOutput with ``num_slots * codewords_per_slot`` blocks per user
        """
        no = self.noise_variance(snr_db, num_users)
        shape = [num_users, num_slots * self.blocks.codewords_per_slot, self.blocks.info_bits]
        bits = self._bits(shape)
        return BlockOutput(bits, *self._blocks_fn(bits, no))

    def transmit_uncoded(
        self, num_users: int, num_slots: int, snr_db: SnrArg = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Random uncoded QAM of the link's modulation in full slots, hard decisions.

        Output
        ------
        bits, bits_hat : [U, num_slots, num_data_res * m], tf.float
        """
        no = self.noise_variance(snr_db, num_users)
        m = self.blocks.bits_per_symbol
        bits = self._bits([num_users, num_slots, self.blocks.num_data_res * m])
        return bits, self._uncoded_fn(bits, no)

    # -------------------------------------------------------------- graphs

    def _code_blocks(self, blocks: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Payload blocks [U, N, info_bits] (N a multiple of C), N0 [U] -> decoded
        blocks [U, N, info_bits] and CRC pass flags [U, N] (bool)."""
        num_users, num_blocks = blocks.shape[0], blocks.shape[1]
        geometry = self.blocks
        num_slots = num_blocks // geometry.codewords_per_slot
        codewords = self._ldpc_encoder(self._crc_encoder(blocks))
        symbols = self._qam(codewords)  # [U, N, symbols_per_codeword]
        used = geometry.codewords_per_slot * geometry.symbols_per_codeword
        slots = tf.reshape(symbols, [num_users * num_slots, used])
        slots = tf.pad(slots, [[0, 0], [0, geometry.num_data_res - used]])
        x_hat, no_eff = self._transmit_slots(slots, tf.repeat(no, num_slots))
        shape = [num_users, num_blocks, geometry.symbols_per_codeword]
        x_hat = tf.reshape(x_hat[:, :used], shape)
        no_eff = tf.reshape(no_eff[:, :used], shape)
        llr = self._qam_demapper(x_hat, no_eff)
        decoded, crc_ok = self._crc_decoder(self._ldpc_decoder(llr))
        return decoded, crc_ok[..., 0]

    def _send_bits(self, payload: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Payload bits [U, P] -> decoded bits [U, P] and whether each bit's block
        failed its CRC [U, P] (bool); counts the blocks."""
        num_users, num_bits = payload.shape[0], payload.shape[1]
        geometry = self.blocks
        num_blocks = geometry.num_slots(num_bits) * geometry.codewords_per_slot
        padded = tf.pad(payload, [[0, 0], [0, num_blocks * geometry.info_bits - num_bits]])
        decoded, crc_ok = self._code_blocks(
            tf.reshape(padded, [num_users, num_blocks, geometry.info_bits]), no
        )
        carrying = geometry.num_blocks(num_bits)  # blocks that hold payload
        sent = tf.constant(num_users * carrying, tf.int64)
        failed = tf.reduce_sum(tf.cast(tf.logical_not(crc_ok[:, :carrying]), tf.int64))
        self._blocks_sent.assign_add(sent)
        self._blocks_failed.assign_add(failed)
        lost = tf.broadcast_to(crc_ok[..., tf.newaxis], decoded.shape)
        lost = tf.logical_not(tf.reshape(lost, [num_users, -1])[:, :num_bits])
        return tf.reshape(decoded, [num_users, -1])[:, :num_bits], lost

    def _features_graph(self, features: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        num_users, num_samples, d = features.shape
        q = self.quantizer
        sent = normalize_power(tf.cast(features, self._rdtype))
        payload = tf.reshape(q.to_bits(q.indices(sent), self._rdtype), [num_users, -1])
        decoded, lost = self._send_bits(payload, no)
        shape = [num_users, num_samples, d, q.bits]
        received = q.values(q.from_bits(tf.reshape(decoded, shape)), self._rdtype)
        if self.settings.failed_block == "zero":
            lost = tf.reduce_any(tf.reshape(lost, shape), axis=-1)
            received = tf.where(lost, tf.zeros_like(received), received)
        return tf.cast(received, features.dtype), tf.cast(sent, features.dtype)

    def _blocks_graph(self, bits: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self._code_blocks(bits, no)

    def _uncoded_graph(self, bits: tf.Tensor, no: tf.Tensor) -> tf.Tensor:
        num_users, num_slots = bits.shape[0], bits.shape[1]
        symbols = tf.reshape(self._qam(bits), [num_users * num_slots, -1])
        x_hat, no_eff = self._transmit_slots(symbols, tf.repeat(no, num_slots))
        bits_hat = self._qam_hard(x_hat, no_eff)
        return tf.reshape(bits_hat, bits.shape)


def build_link(
    config: LinkConfig, feature_dim: int, direction: Direction = "uplink", **kwargs: object
) -> Link:
    """The link of ``direction`` under its scheme (``config.scheme_of``): a
    :class:`~phy.link.Link` (analog) or a :class:`DigitalLink`; ``kwargs`` as
    :class:`~phy.link.Link` takes them (``jit_compile``)."""
    cls = DigitalLink if config.scheme_of(direction) == "digital" else Link
    return cls(config, feature_dim, direction, **kwargs)
