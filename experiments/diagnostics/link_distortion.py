"""How much of a link's feature error is noise-like, at the link level alone.

The feature NMSE of ``semfed link`` counts every departure of the received
vectors from the sent ones, including a plain shrinking of the signal (a biased
equalizer, or inter-symbol and inter-carrier interference that take power away
from it), which a decoder absorbs. This script sends random Gaussian features
through the configured link and reports, per CSI and SNR:

* ``nmse``: sum ||r - s||^2 / sum ||s||^2, as ``semfed link``;
* ``gain``: the least-squares scalar a = <r, s> / <s, s> (mean over users);
* ``sdr_db``: signal to distortion after that gain, rho^2 / (1 - rho^2) with
  rho the correlation of r and s over all users and samples: the part of the
  error uncorrelated with the signal;
* ``p10_db`` and ``p50_db``: the 10th percentile and the median over feature
  vectors of the same ratio computed per vector (what one image's decoder
  input suffers). Two links with one mean SDR differ here when one of them
  fades whole vectors deeply (flat fading) and the other does not (a
  line-of-sight path, or fading that varies within a vector).

It was used to ask why a cyclic prefix 13 samples too short costs FedCL so
little (docs/experiments.md, "Link-level study: cyclic prefix"), and why the
fading models rank as they do ("Link-level study: fading models"):

    python experiments/diagnostics/link_distortion.py experiments/configs/paper.toml \
        --set link.domain=time --set link.delay_spread_ns=1000.0 \
        --set link.cyclic_prefix_length=1 --snr 0,10,20
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import sionna.phy
import tensorflow as tf

from phy.link import Link
from semfed.config import load_config


def distortion(received: np.ndarray, sent: np.ndarray) -> tuple[float, float, float]:
    """NMSE, mean least-squares gain per user and SDR [dB] of received vs sent.

    received, sent : [U, B, d] real arrays.
    """
    r = received.astype(np.float64)
    s = sent.astype(np.float64)
    nmse = float(((r - s) ** 2).sum() / (s**2).sum())
    gain = float(np.mean((r * s).sum(axis=(1, 2)) / (s**2).sum(axis=(1, 2))))
    rho2 = float((r * s).sum() ** 2 / ((r**2).sum() * (s**2).sum()))
    return nmse, gain, 10.0 * np.log10(rho2 / (1.0 - rho2))


def vector_sdr_db(received: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """Per-vector SDR [dB], rho_v^2 / (1 - rho_v^2) with rho_v the correlation of r_v and s_v.

    received, sent : [U, B, d] real arrays. Output: [U * B], capped at 100 dB.
    """
    r = received.astype(np.float64).reshape(-1, received.shape[-1])
    s = sent.astype(np.float64).reshape(-1, sent.shape[-1])
    rho2 = (r * s).sum(-1) ** 2 / ((r**2).sum(-1) * (s**2).sum(-1))
    return 10.0 * np.log10(np.maximum(rho2 / np.maximum(1.0 - rho2, 1e-10), 1e-10))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="run config (TOML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--csi", default="perfect,ls", help="comma list (default perfect,ls)")
    parser.add_argument("--snr", default="0,10,20", help="comma list of Es/N0 [dB]")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--samples", type=int, default=256, help="feature vectors per user")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = load_config(args.config, args.set)
    lc = config.link
    print(f"channel {lc.channel}, domain {lc.domain}, cyclic prefix ", end="")
    print(f"{lc.cyclic_prefix_length}, {args.users} x {args.samples} vectors")
    heads = ("nmse", 7), ("gain", 6), ("sdr_db", 7), ("p10_db", 7), ("p50_db", 7)
    print(f"{'csi':8s} {'SNR dB':>6s} " + " ".join(f"{h:>{w}s}" for h, w in heads))
    for csi in args.csi.split(","):
        link = Link(dataclasses.replace(config.link, csi=csi), config.model.feature_dim)
        sionna.phy.config.seed = args.seed
        tf.random.set_seed(args.seed)
        features = tf.random.normal([args.users, args.samples, config.model.feature_dim])
        for snr in (float(v) for v in args.snr.split(",")):
            out = link(features, snr, measure=True)
            received, sent = out.received.numpy(), out.sent.numpy()
            nmse, gain, sdr = distortion(received, sent)
            p10, p50 = np.percentile(vector_sdr_db(received, sent), [10, 50])
            print(f"{csi:8s} {snr:6.1f} {nmse:7.3f} {gain:6.3f} {sdr:7.2f} {p10:7.2f} {p50:7.2f}")


if __name__ == "__main__":
    main()
