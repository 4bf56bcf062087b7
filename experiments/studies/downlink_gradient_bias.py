"""Mean gain <g_check, g> / ||g||^2 of the gradient downlink at 0 dB, per equalizer.

Run: python experiments/studies/downlink_gradient_bias.py
"""

import tensorflow as tf

from phy.config import LinkConfig
from phy.link import Link
from phy.seeding import set_seed

set_seed(0)
g = tf.random.stateless_normal([2, 2048, 64], seed=[1, 2])
for ch in ("awgn", "rayleigh"):
    for eq in ("mmse", "lmmse"):
        link = Link(LinkConfig(channel=ch, equalizer=eq), 64, "downlink")
        gc = link.send_gradients(g, 0.0)
        gain = float(tf.reduce_sum(gc * g) / tf.reduce_sum(g * g))
        print(f"{ch:9s} {eq:6s} <g_check,g>/||g||^2 at 0 dB = {gain:.2f}")
