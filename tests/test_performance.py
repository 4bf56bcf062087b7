"""Performance structure: compiled steps per architecture (not per client or round),
no growth in traces or variables over rounds, and the benchmark's arithmetic.

Counts, not timings: timings belong to ``semfed bench``.
"""

from __future__ import annotations

import gc

import numpy as np
import pytest
import tensorflow as tf

from semfed.bench import (
    BenchResult,
    RoundTimes,
    format_precision_comparison,
    format_result,
    linear_fit,
    run_bench,
)
from semfed.config import load_config
from tests.tiny_setting import TINY_SETTING

# Six heterogeneous clients: the five encoder variants, one of them twice.
SIX_CLIENTS = [
    *TINY_SETTING,
    "partition.num_clients=6",
    "data.synthetic_classes=6",
    "model.encoders=heterogeneous",
    "partition.shots=16",
    "training.rounds=1",
]


def _variables_alive() -> int:
    gc.collect()
    return sum(isinstance(o, tf.Variable) for o in gc.get_objects())


@pytest.mark.slow
def test_steps_compiled_once_per_architecture_and_never_retraced():
    import logging

    from semfed.bench import _federation, _timed_round
    from semfed.runtime import PerArchitectureTraces

    class Retracing(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            if "retracing" in record.getMessage():
                self.records.append(record)

    handler = Retracing()
    logging.getLogger("tensorflow").addHandler(handler)
    cfg = load_config(None, SIX_CLIENTS)
    algorithm, _ = _federation(cfg, ideal=False)
    assert len(algorithm.clients) == 6
    assert len(algorithm.workspaces) == 5  # dcgan, narrow, shallow, deep, k3
    steps = {id(s): s for s in algorithm._steps.values()}.values()
    assert len(steps) == 5
    evaluator = algorithm.make_evaluator(cfg.evaluation.batch_size)
    rng = np.random.default_rng(0)
    _timed_round(algorithm, evaluator, 0, rng, [20.0] * 6)

    def traces() -> list[int]:
        fns = [algorithm._scg_step, *evaluator._scores.values()]
        return [s.tracing_count for s in steps] + [f.experimental_get_tracing_count() for f in fns]

    def copy_traces() -> list[int]:
        return [ws._assign_all.experimental_get_tracing_count() for ws in algorithm.workspaces]

    after_first = traces()
    assert after_first == [1] * len(after_first)  # one trace each, none per client
    # the copies: one trace for load and store with the optimizers, one for the
    # evaluation's view without them, whatever the number of clients
    assert copy_traces() == [2] * 5
    # nothing was NaN: the guarded form of the step never ran
    assert [s.guarded.experimental_get_tracing_count() for s in steps] == [0] * 5
    variables = _variables_alive()
    for t in (1, 2, 3):
        _timed_round(algorithm, evaluator, t, rng, [20.0] * 6)
    assert traces() == after_first  # no retracing in later rounds
    assert copy_traces() == [2] * 5
    assert _variables_alive() == variables  # nothing accumulates round after round
    logging.getLogger("tensorflow").removeHandler(handler)
    # TensorFlow's retracing warnings here are all about per-architecture functions
    # (five architectures traced once each), which semfed's quiet log drops
    keep = PerArchitectureTraces().filter
    assert [r.getMessage()[:80] for r in handler.records if keep(r)] == []


def test_borrowed_workspace_round_trips_client_state():
    from semfed.bench import _federation

    cfg = load_config(None, SIX_CLIENTS)
    algorithm, _ = _federation(cfg, ideal=True)
    a, b = algorithm.clients[0], algorithm.clients[5]  # same architecture (k mod 5)
    assert algorithm.workspaces.of(a) is algorithm.workspaces.of(b)
    before_b = [w.copy() for w in b.encoder.get_weights()]
    with algorithm.workspaces.borrow(a) as ws:
        for v in ws.encoder.trainable_variables:
            v.assign_add(tf.ones_like(v))
    for new, old in zip(
        a.encoder.get_weights(), algorithm.workspaces.of(a).encoder.get_weights(), strict=True
    ):
        np.testing.assert_array_equal(new, old)  # written back to client a
    for new, old in zip(b.encoder.get_weights(), before_b, strict=True):
        np.testing.assert_array_equal(new, old)  # client b untouched


def test_linear_fit_by_hand():
    a, b, r2 = linear_fit([5, 10, 20, 40], [1 + 0.5 * k for k in (5, 10, 20, 40)])
    assert (a, b, r2) == pytest.approx((1.0, 0.5, 1.0))
    # y = 0, 1, 3 at k = 0, 1, 2: b = Sxy/Sxx = 3/2, a = 4/3 - 3/2 = -1/6,
    # SSres = 1/36 + 1/9 + 1/36 = 1/6, SStot = 14/3, R^2 = 1 - 1/28.
    a, b, r2 = linear_fit([0, 1, 2], [0, 1, 3])
    assert (a, b, r2) == pytest.approx((-1 / 6, 1.5, 27 / 28))


def _result(trains, floors, ideals):
    rounds = [RoundTimes(t, 0.0, 0.0, 1.0, 100) for t in trains]
    return BenchResult(
        config=load_config(None),
        num_clients=2,
        architectures=1,
        warmup_s=1.0,
        rounds=rounds,
        components=dict.fromkeys(("encoders", "uplink", "decoders", "downlink"), 1.0),
        floor_rounds=floors,
        ideal_train_rounds=ideals,
        peak_rss_mib=1.0,
    )


def test_ratio_intervals_by_hand():
    # link shares 0.1, 0.05, 0.15: mean 0.1, s = 0.05, half-width t(0.975, 2) s / sqrt(3)
    # = 4.3027 * 0.05 / 1.7321 = 0.1242
    res = _result([10.0, 10.0, 10.0], [8.0, 10.0, 12.5], [9.0, 9.5, 8.5])
    share = res.ratio_intervals()["link share (real - ideal)"]
    assert share.n == 3 and share.mean == pytest.approx(0.1)
    assert (share.low, share.high) == pytest.approx((0.1 - 0.12421, 0.1 + 0.12421), abs=1e-4)
    # round / floor per round: 1.25, 1.0, 0.8 (mean 3.05 / 3 = 1.0167); the ratio of
    # the means (10 / 10.1667 = 0.984) is another number, reported apart
    ratio = res.ratio_intervals()["training round / floor"]
    assert ratio.mean == pytest.approx(3.05 / 3)
    assert res.ratios()["training round / floor"] == pytest.approx(10 / (30.5 / 3))
    text = format_result(res)
    assert "round by round (3 rounds" in text and "[-0.024, 0.224]" in text
    assert res.to_dict()["ratio_intervals"]["link share (real - ideal)"]["n"] == 3
    # no per-round references kept (e.g. --no-ideal): no interval for the link
    assert "link share (real - ideal)" not in _result([10.0], [9.0], []).ratio_intervals()


def test_precision_comparison_pairs_each_bfloat16_round_with_a_float32_floor():
    f32 = _result([10.0, 10.0], [9.0, 11.0], [])
    bf16 = _result([8.0, 7.0], [7.0, 6.0], [])
    text = format_precision_comparison(f32, bf16)
    assert "bfloat16 round / float32 floor" in text and "round by round" not in text
    # the float32 floor timed after each bfloat16 round: 12 and 10 s (the machine
    # slowed by a fifth since the float32 bench): round ratios 8/12, 7/10, mean
    # 0.6833; the ratio of the benches' means, 7.5 / 10 = 0.75, reports the drift too
    bf16.paired_floor_rounds = [12.0, 10.0]
    text = format_precision_comparison(f32, bf16)
    assert "0.750" in text and "timed after each bfloat16 round (11.000 s" in text
    paired = [x for x in text.splitlines() if "[" in x]
    assert len(paired) == 2  # the round and the floor, each with its interval
    # t(0.975, 1) = 12.706; s of (0.6667, 0.7) is 0.02357: half-width 0.2118
    assert paired[0].split()[:6] == ["bfloat16", "round", "/", "float32", "floor", "0.683"]
    assert paired[0].endswith("[0.472, 0.895]")
    # floors 7/12 and 6/10: mean 0.5917
    assert paired[1].split()[:6] == ["bfloat16", "floor", "/", "float32", "floor", "0.592"]
    assert bf16.to_dict()["paired_floor_rounds"] == [12.0, 10.0]


@pytest.mark.slow
def test_bench_reports_every_component_and_reference():
    cfg = load_config(None, [*TINY_SETTING, "model.encoders=homogeneous"])
    lines, paired_calls, frozen = [], [], []

    def paired_floor():  # another bench's floor; notes whether the heap is frozen
        paired_calls.append(1)
        frozen.append(gc.get_freeze_count())
        return 0.5

    res = run_bench(
        cfg,
        rounds=1,
        repeats=2,
        rss_rounds=(2,),
        log=lines.append,
        paired_floor=paired_floor,
        keep_floor=True,
    )
    assert len(paired_calls) == 2  # once untimed, then after the one timed round
    # the timed rounds run with what the warm-up built frozen, and it is thawed after
    assert min(frozen) > 0 and gc.get_freeze_count() == 0
    assert res.paired_floor_rounds == [0.5] and "paired floor 0.50 s" in "".join(lines)
    assert res.floor_fn is not None and res.floor_fn() > 0  # this bench's floor, kept
    assert res.num_clients == 3 and res.architectures == 1
    assert len(res.rounds) == 1 and res.rounds[0].images == 3 * 6 * 16  # 6 batches of 16
    assert set(res.components) == {"encoders", "uplink", "decoders", "downlink"}
    assert res.ideal_train_s is not None  # the ideal-link reference was measured
    assert set(res.rss_by_round) == {2}
    ratios = res.ratios()
    assert set(ratios) == {
        "train / floor",
        "training round / floor",
        "link share (attributed)",
        "link share (real - ideal)",
    }
    text = format_result(res)
    for label in ("client encoders", "uplink", "decoders", "downlink", "SCG", "aggregation"):
        assert label in text
    assert "compute floor" in text and "ideal link" in text and "peak RSS" in text
    assert "device: CPU" in text or "device: GPU" in text
    assert "precision: float32" in text and "per round at every = 1" in text
    intervals = res.ratio_intervals()  # one timed round: a mean and no interval
    assert intervals["link share (real - ideal)"].n == 1
    assert intervals["training round / floor"].mean == pytest.approx(
        ratios["training round / floor"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("channel", ["awgn", "tdl-a"])
def test_compiled_link_compiles_once_per_direction_and_shape(channel):
    """With link.jit_compile (the default), every link call of a run has one of a few
    fixed shapes: one XLA compilation per direction and shape, none after round 0.
    With TDL-A (a static channel) the training's calls take draws made ahead, one
    traced draw per direction (any pass length) and one compiled call per direction;
    evaluation draws its own."""
    from semfed.bench import _federation
    from semfed.train import _evaluate, _evaluation_snrs

    cfg = load_config(
        None,
        [
            *TINY_SETTING,
            "model.encoders=homogeneous",
            "link.jit_compile=true",
            f"link.channel={channel}",
        ],
    )
    assert load_config(None).link.jit_compile  # the default
    algorithm, _ = _federation(cfg, ideal=False)
    evaluator = algorithm.make_evaluator(cfg.evaluation.batch_size)
    snrs = _evaluation_snrs(cfg)
    uplink, downlink = algorithm.radio.link("uplink"), algorithm.radio.link("downlink")
    assert uplink._features_fn._jit_compile and downlink._features_fn._jit_compile
    ahead = channel == "tdl-a"
    assert uplink.can_draw_ahead is downlink.can_draw_ahead is ahead
    rng = np.random.default_rng(0)

    def traces(name: str) -> tuple[int, int]:
        return tuple(
            getattr(link, name).experimental_get_tracing_count() if ahead else 0
            for link in (uplink, downlink)
        )

    def compilations() -> tuple[tuple[int, int], ...]:
        own = tuple(
            link._features_fn.experimental_get_tracing_count() for link in (uplink, downlink)
        )
        return own, traces("_drawn_features_fn"), traces("_draw_fn")

    algorithm.run_round(0, rng)
    _evaluate(evaluator, snrs, cfg, 0)
    if ahead:
        # training: calls with draws ([1, 16, 64] both ways), one draw per pass and
        # direction; evaluation: the uplink's own draws at [1, 60, 64]
        assert compilations() == ((1, 0), (1, 1), (1, 1))
        assert uplink._drawn_features_fn._jit_compile
    else:
        # uplink: the training batch [1, 16, 64] and the evaluation batch [1, 60, 64];
        # downlink: the training batch only.
        assert compilations() == ((2, 1), (0, 0), (0, 0))
    first = compilations()
    for t in (1, 2):
        algorithm.run_round(t, rng)
        _evaluate(evaluator, snrs, cfg, t)
    assert compilations() == first


@pytest.mark.parametrize("name", ["fedcl", "fedavg"])
def test_bfloat16_computes_inside_and_keeps_float32_at_the_boundaries(name):
    """mixed_bfloat16: hidden layers compute in bfloat16 on float32 weights; features,
    logits and centroids (all that crosses the link, every loss) stay float32."""
    from tests.tiny_setting import ideal_federation

    cfg = load_config(
        None,
        [
            *TINY_SETTING,
            "model.encoders=homogeneous",
            "training.precision=bfloat16",
            f"algorithm.name={name}",
            "training.local_iterations=2",
        ],
    )
    alg = ideal_federation(cfg)
    client = alg.clients[0]
    for model in (client.encoder, client.decoder, *[ws.encoder for ws in alg.workspaces]):
        hidden = {layer.compute_dtype for layer in model.layers[1:-1]}
        assert hidden == {"bfloat16"}, model.name
        assert model.layers[-1].compute_dtype == "float32"
        assert {v.dtype for v in model.weights} == {"float32"}
    x = tf.constant(client.x_train[:4])
    assert client.encoder(x).dtype == tf.float32
    stats = alg.run_round(0, np.random.default_rng(0))
    assert np.isfinite(stats.train_loss)
    if name == "fedcl":
        assert alg.global_centroids().dtype == tf.float32
    assert load_config(None).training.precision == "float32"  # the default


def test_bench_setting_comparison_reads_ratios_against_the_first_value():
    """semfed bench --compare: each round and floor against the first value's, by hand."""
    from types import SimpleNamespace

    from semfed.bench import format_setting_comparison

    one = SimpleNamespace(round_s=40.0, floor_s=32.0)
    four = SimpleNamespace(round_s=50.0, floor_s=34.0)
    text = format_setting_comparison("link.bs_antennas", ["1", "4"], [one, four])
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:]}
    assert rows["1"] == ["40.000", "32.000", "1.000", "1.000", "1.250"]
    # 50 / 40 = 1.25 round ratio; 34 / 32 = 1.0625 floor ratio; 50 / 34 = 1.4706
    assert rows["4"] == ["50.000", "34.000", "1.250", "1.062", "1.471"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--compare", "link.bs_antennas"], "KEY=V1,V2"),
        (["--compare", "link.bs_antennas=4"], "at least two values"),
        (["--compare", "link.bs_antennas=1,4", "--compare-precision"], "exclude each other"),
        (["--compare", "link.bs_antennas=1,4", "--clients", "5,10"], "exclude each other"),
    ],
)
def test_bench_compare_refuses_bad_requests(argv, message, capsys, tmp_path):
    from semfed.cli import main

    (tmp_path / "c.toml").write_text("")
    assert main(["bench", "--config", str(tmp_path / "c.toml"), *argv]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("name", "fused"), [("adam", True), ("adam", False), ("sgd", True)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_gradient_leaves_a_non_finite_weight(name, fused, bad):
    """What the end-of-pass check relies on: one NaN or Inf gradient entry makes that
    weight non-finite after the update (Adam, fused or Keras's: m / sqrt(v) is NaN;
    SGD: w - lr * g), and later finite updates do not bring it back."""
    from semfed.optimizers import make_optimizer

    v = tf.Variable([1.0, 2.0])
    opt = make_optimizer(name, 0.01, fused)
    opt.apply_gradients([(tf.constant([0.5, bad]), v)])
    for _ in range(3):
        opt.apply_gradients([(tf.constant([0.5, 0.5]), v)])
    got = v.numpy()
    assert np.isfinite(got[0]) and not np.isfinite(got[1])
