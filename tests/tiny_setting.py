"""The tiny learnable setting shared by the training tests.

Synthetic 16x16 images, 3 clients x 3 classes of 10, 32 shots each, small models,
an AWGN link at 20 dB; each test module adds its encoders and budget.
"""

TINY_SETTING = [
    "data.name=synthetic",
    "data.synthetic_image_size=16",
    "data.synthetic_train_per_class=120",
    "data.synthetic_test_per_class=40",
    "partition.num_clients=3",
    "partition.ways=3",
    "partition.shots=32",
    "partition.test_shots=20",
    "model.encoder_width=8",
    "model.decoder_hidden=[32]",
    "model.scg_hidden=32",
    "training.batch_size=16",
    "training.checkpoint_every=1",
    "link.channel=awgn",
    "link.uplink_snr_db=20.0",
    "link.downlink_snr_db=20.0",
    "output.progress=false",
    "output.tensorboard=false",
    # Tests build many short-lived links: XLA's compilation (per link and shape)
    # would cost more than it saves. test_performance checks the compiled link.
    "link.jit_compile=false",
]


def ideal_federation(config):
    """An untrained federation of ``config`` over an ideal (identity) link."""
    from semfed.train import build_federation

    return build_federation(config, ideal_link=True)[0]


# A tiny synthetic config: 2 clients, 8x8 images, one round (about 10 s a run).
TINY_TOML = """
[data]
name = "synthetic"
synthetic_image_size = 8
synthetic_classes = 4
synthetic_train_per_class = 20
synthetic_test_per_class = 10
[partition]
num_clients = 2
ways = 2
shots = 8
test_shots = 5
[model]
encoder_width = 4
decoder_hidden = [8]
scg_hidden = 8
[training]
batch_size = 8
rounds = 1
checkpoint_every = 1
[link]
channel = "awgn"
uplink_snr_db = 20.0
downlink_snr_db = 20.0
[output]
progress = false
tensorboard = false
"""
