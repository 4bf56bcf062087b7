"""``semfed bench``: where a federated round's time goes, against two reference points.

For a config (usually ``experiments/configs/paper.toml``) it builds the
federation as ``semfed train`` does, runs two warm-up rounds (the first compiles
the steps; the second absorbs one-off costs, see :func:`run_bench`; both
reported apart), then ``rounds`` timed rounds. Per round:

* measured directly: the clients' local training (``train_clients``), the SCG's
  steps, the rest of the BS's aggregation, and the evaluation of every client;
* attributed inside local training, from isolated timings of the same compiled
  pieces at the same batch shape times the number of mini-batches: encoder
  forward+backward+update, uplink, decoder forward+backward+update, downlink,
  each less the cost of calling an empty compiled function with the same
  arguments from Python (about 0.3 ms here; inside the round's step the pieces
  are not called from Python). What local training took beyond these is Python,
  copies and dispatch ("other"). The attribution is an estimate; the two
  references below are not. Since a local pass is one compiled loop, "other" can
  come out below zero: each piece called alone still pays a function launch that
  the loop does not.

Reference points, measured in the same process on the same models:

* compute floor: a plain Keras training step (encoder -> decoder -> cross
  entropy, Adam on both) per mini-batch, the same number of mini-batches per
  architecture as a round has, with no federation, no link, no copies;
* ideal link: the same round with both links replaced by the identity.

The real round, the ideal-link round and the floor run in turn each round, so
that drift in the machine's speed hits all three alike. Ratios: local training
/ floor, training round / floor, and the link's share of local training, both
attributed and measured (real round minus ideal-link round, over the real
round); with several timed rounds, the measured ratios round by round with the
95 % interval of their mean (the machine's noise). Peak RSS is taken before the
ideal-link federation is built.
"""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from semfed.config import RunConfig
from semfed.statistics import Interval, mean_interval

WARMUP_ROUNDS = 2


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """Resident set size now, MiB (from /proc/self/statm; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:
        return peak_rss_mib()


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Collect Python's garbage and freeze what is left (``gc.freeze``) for the block;
    unfrozen after it, so that what it held can be collected again."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _timed(fn: Callable[[], Any], repeats: int) -> float:
    """Seconds per call of ``fn`` (which returns something to block on), after one warm-up."""
    out = fn()
    if hasattr(out, "numpy"):
        out.numpy()
    t0 = time.perf_counter()
    out = None
    for _ in range(repeats):
        out = fn()
    if hasattr(out, "numpy"):
        out.numpy()
    return (time.perf_counter() - t0) / repeats


@dataclass
class RoundTimes:
    train: float  # local training of every client (train_clients)
    scg: float
    aggregation: float  # aggregate() without the SCG
    evaluation: float
    images: int

    @property
    def round_s(self) -> float:
        """The training round: local training, the SCG and the aggregation."""
        return self.train + self.scg + self.aggregation


@dataclass
class BenchResult:
    config: RunConfig
    num_clients: int
    architectures: int
    warmup_s: float
    rounds: list[RoundTimes]
    components: dict[str, float]  # attributed seconds per round inside local training
    # per timed round, each taken right after it: the compute floor, and local
    # training with an ideal link (empty when that reference was not measured)
    floor_rounds: list[float]
    ideal_train_rounds: list[float]
    peak_rss_mib: float
    rss_by_round: dict[int, float] = field(default_factory=dict)
    device: str = ""
    # --compare-precision: the other precision's compute floor, timed right after each
    # timed round of this one (so that the machine's drift between the two benches
    # does not enter their ratio); empty otherwise
    paired_floor_rounds: list[float] = field(default_factory=list)
    # with keep_floor: this bench's compute floor as a callable (seconds per round),
    # for the next bench; it keeps this bench's federation alive, so None otherwise
    floor_fn: Callable[[], float] | None = field(default=None, repr=False, compare=False)

    @property
    def floor_s(self) -> float:
        """Compute floor per round."""
        return float(np.mean(self.floor_rounds))

    @property
    def ideal_train_s(self) -> float | None:
        """Local training per round with an ideal link; None when not measured."""
        return float(np.mean(self.ideal_train_rounds)) if self.ideal_train_rounds else None

    @property
    def precision(self) -> str:
        return self.config.training.precision

    @property
    def evaluation_share(self) -> float:
        """Evaluation's cost per training round at ``evaluation.every``, over that round."""
        per_round = self.mean("evaluation") / self.config.evaluation.every
        return per_round / (self.round_s + per_round)

    def mean(self, name: str) -> float:
        return float(np.mean([getattr(r, name) for r in self.rounds]))

    @property
    def round_s(self) -> float:
        return self.mean("round_s")

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "precision": self.precision,
            "link_jit_compile": self.config.link.jit_compile,
            "evaluation_every": self.config.evaluation.every,
            "evaluation_share": self.evaluation_share,
            "images_per_s": self.mean("images") / self.round_s,
            "num_clients": self.num_clients,
            "architectures": self.architectures,
            "warmup_s": self.warmup_s,
            "train_s": self.mean("train"),
            "scg_s": self.mean("scg"),
            "aggregation_s": self.mean("aggregation"),
            "round_s": self.round_s,
            "evaluation_s": self.mean("evaluation"),
            "images_per_round": self.mean("images"),
            "components_s": self.components,
            "floor_s": self.floor_s,
            "ideal_train_s": self.ideal_train_s,
            "peak_rss_mib": self.peak_rss_mib,
            "rss_by_round": self.rss_by_round,
            "ratios": self.ratios(),
            "paired_floor_rounds": self.paired_floor_rounds,
            "ratio_intervals": {
                name: {"n": i.n, "mean": i.mean, "low": i.low, "high": i.high}
                for name, i in self.ratio_intervals().items()
            },
        }

    def ratios(self) -> dict[str, float]:
        train = self.mean("train")
        out = {
            "train / floor": train / self.floor_s,
            "training round / floor": self.round_s / self.floor_s,
            "link share (attributed)": (self.components["uplink"] + self.components["downlink"])
            / train,
        }
        if self.ideal_train_s is not None:
            out["link share (real - ideal)"] = (train - self.ideal_train_s) / train
        return out

    def ratio_intervals(self) -> dict[str, Interval]:
        """The measured ratios round by round (each timed round against the floor and
        the ideal-link round taken right after it), with the 95 % Student-t interval
        of their mean: how far the machine's noise leaves a ratio open. No link
        share without the ideal-link reference."""
        out = {
            "training round / floor": mean_interval(
                [r.round_s / f for r, f in zip(self.rounds, self.floor_rounds, strict=True)]
            )
        }
        if self.ideal_train_rounds:
            out["link share (real - ideal)"] = mean_interval(
                [
                    (r.train - ideal) / r.train
                    for r, ideal in zip(self.rounds, self.ideal_train_rounds, strict=True)
                ]
            )
        return out


def _federation(config: RunConfig, ideal: bool):
    """The algorithm of ``config`` (quietly: no progress bar) and its number of classes."""
    from dataclasses import replace

    from semfed.train import build_federation

    quiet = replace(config, output=replace(config.output, progress=False))
    algorithm, _ = build_federation(quiet, ideal_link=ideal)
    return algorithm, algorithm.num_classes


def _timed_round(algorithm, evaluator, round_index: int, rng, snrs: list[float]) -> RoundTimes:
    """One round as ``run_round`` does it, with its phases timed."""
    scg_time = [0.0]
    train_scg = getattr(algorithm, "train_scg", None)
    if train_scg is not None:

        def timed_scg(*args, **kwargs):
            t = time.perf_counter()
            try:
                return train_scg(*args, **kwargs)
            finally:
                scg_time[0] += time.perf_counter() - t

        algorithm.train_scg = timed_scg
    try:
        t0 = time.perf_counter()
        passes = algorithm.train_clients(round_index, rng)
        t1 = time.perf_counter()
        algorithm.aggregate(passes, round_index)
        t2 = time.perf_counter()
    finally:
        if train_scg is not None:
            del algorithm.train_scg
    evaluation = 0.0
    if evaluator is not None:
        t3 = time.perf_counter()
        evaluator.evaluate(snrs)
        evaluation = time.perf_counter() - t3
    return RoundTimes(
        train=t1 - t0,
        scg=scg_time[0],
        aggregation=(t2 - t1) - scg_time[0],
        evaluation=evaluation,
        images=sum(p.samples for p in passes),
    )


def _pieces(algorithm, num_classes: int) -> dict[int, dict[str, Callable[[], Any]]]:
    """Per workspace (by ``id``): the compiled pieces of a local step, and the
    compute-floor step, each bound to fixed inputs of the training batch shape."""
    import tensorflow as tf

    from semfed.radio import normalize_power

    cfg = algorithm.config
    b, d = cfg.training.batch_size, cfg.model.feature_dim
    radio = algorithm.radio
    snr_ul = radio.uplink_snr_db[:1]
    snr_dl = radio.downlink_snr_db[:1]
    rng = np.random.default_rng(0)
    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # A link that draws ahead takes one call's draws, made here once; the pass's
    # draw itself (once per client and direction) is not attributed.
    draws = {
        d: tuple(t[0] for t in radio.draw(d, 1, b, 0)) if radio.can_draw_ahead(d, 0) else None
        for d in ("uplink", "downlink")
    }

    @tf.function
    def uplink(f, s):
        return radio.uplink(f, s, client=0, draws=draws["uplink"])

    @tf.function
    def downlink(f, s):
        return radio.downlink(f, s, client=0, draws=draws["downlink"])

    out = {}
    for ws in algorithm.workspaces:
        shape = ws.encoder.input_shape[1:]
        x = tf.constant(rng.uniform(-1, 1, (b, *shape)).astype(np.float32))
        y = tf.constant(rng.integers(0, num_classes, b).astype(np.int32))
        g = tf.constant(rng.normal(size=(b, d)).astype(np.float32) * 1e-3)
        f = tf.constant(rng.normal(size=(1, b, d)).astype(np.float32))
        enc, dec = ws.encoder, ws.decoder
        enc_opt, dec_opt = ws.encoder_optimizer, ws.decoder_optimizer

        @tf.function
        def encoder_step(x, g, enc=enc, opt=enc_opt):
            with tf.GradientTape() as tape:
                out = normalize_power(enc(x, training=True))
            grads = tape.gradient(out, enc.trainable_variables, output_gradients=g)
            opt.apply_gradients(zip(grads, enc.trainable_variables, strict=True))
            return out

        @tf.function
        def decoder_step(f, y, dec=dec, opt=dec_opt):
            with tf.GradientTape() as tape:
                tape.watch(f)
                loss = ce(y, dec(f, training=True))
            grads = tape.gradient(loss, [*dec.trainable_variables, f])
            opt.apply_gradients(zip(grads[:-1], dec.trainable_variables, strict=True))
            return grads[-1]

        floor_step = compute_floor_step(enc, dec, enc_opt, dec_opt)

        out[id(ws)] = {
            "encoders": partial(encoder_step, x, g),
            "decoders": partial(decoder_step, f[0], y),
            "uplink": partial(uplink, f, snr_ul),
            "downlink": partial(downlink, f, snr_dl),
            "floor": partial(floor_step, x, y),
        }
    return out


def compute_floor_step(encoder, decoder, encoder_optimizer, decoder_optimizer) -> Callable:
    """The compute floor's step, compiled: a plain Keras step encoder -> decoder ->
    cross-entropy -> each network's optimizer, no federation and no link.
    ``step(x [B, H, W, C] float32, y [B] int32)`` returns the loss."""
    import tensorflow as tf

    ce = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = ce(y, decoder(encoder(x, training=True), training=True))
        variables = [*encoder.trainable_variables, *decoder.trainable_variables]
        grads = tape.gradient(loss, variables)
        k = len(encoder.trainable_variables)
        encoder_optimizer.apply_gradients(zip(grads[:k], variables[:k], strict=True))
        decoder_optimizer.apply_gradients(zip(grads[k:], variables[k:], strict=True))
        return loss

    return step


def _empty_call(piece: partial) -> partial:
    """A compiled function that returns its first argument, bound to ``piece``'s
    arguments: the cost of calling a compiled piece from Python, without its work."""
    import tensorflow as tf

    @tf.function
    def empty(first, *rest):
        return tf.identity(first)

    return partial(empty, *piece.args)


def _floor_round(pieces: dict[int, dict[str, Callable]], batches: dict[int, int]) -> float:
    """Seconds for the compute floor of one round: plain steps, as many per architecture
    as the round has mini-batches."""
    t0 = time.perf_counter()
    for key, n in batches.items():
        out = None
        for _ in range(n):
            out = pieces[key]["floor"]()
        if out is not None:
            out.numpy()
    return time.perf_counter() - t0


def run_bench(
    config: RunConfig,
    rounds: int = 3,
    *,
    ideal_reference: bool = True,
    repeats: int = 10,
    rss_rounds: Sequence[int] = (),
    log: Callable[[str], None] = print,
    paired_floor: Callable[[], float] | None = None,
    keep_floor: bool = False,
) -> BenchResult:
    """Warm-up rounds, ``rounds`` timed rounds, component timings and the references.

    ``rss_rounds``: also run up to the largest of these rounds (untimed beyond
    ``rounds``) and record the current RSS after each listed round.
    ``paired_floor``: another bench's ``floor_fn`` (``--compare-precision``: the
    float32 floor), timed in turn with every timed round of this one.
    ``keep_floor``: return this bench's floor as ``floor_fn`` (its models stay in
    memory as long as the result holds it).
    """
    from semfed.runtime import device_summary
    from semfed.train import _evaluation_snrs

    algorithm, num_classes = _federation(config, ideal=False)
    evaluator = algorithm.make_evaluator(config.evaluation.batch_size)
    snrs = _evaluation_snrs(config)[0][1]
    rng = np.random.default_rng(config.training.seed)
    k = len(algorithm.clients)
    log(
        f"bench: K = {k} clients, {len(algorithm.workspaces)} encoder architecture(s), "
        f"{config.algorithm.name}, {config.link.channel}/{config.link.csi}, "
        f"precision {config.training.precision}, link XLA {config.link.jit_compile}"
    )
    # Warm-up: the first round traces and compiles. Building and compiling a
    # second federation (the ideal-link reference) makes the next round of the
    # first one about twice as slow once (measured: 13.4 s against 6.4 s at K = 5,
    # no retracing), so both federations get their second warm-up round after
    # both exist and have compiled.
    t0 = time.perf_counter()
    _timed_round(algorithm, evaluator, 0, rng, snrs)
    warmups = [time.perf_counter() - t0]
    peak = peak_rss_mib()  # before the reference federation exists
    # Mini-batches per workspace in one round (schedules depend only on D_k).
    steps = _steps_per_round(config, algorithm)
    batches: dict[int, int] = {}
    for c in algorithm.clients:
        ws = algorithm.workspaces.of(c)
        batches[id(ws)] = batches.get(id(ws), 0) + steps[c.id]
    pieces = _pieces(algorithm, num_classes)
    for fns in pieces.values():  # compile them
        for fn in fns.values():
            fn()
    ideal_alg = ideal_rng = None
    if ideal_reference and not algorithm.radio.ideal:
        ideal_alg, _ = _federation(config, ideal=True)
        ideal_rng = np.random.default_rng(config.training.seed)
        _timed_round(ideal_alg, None, 0, ideal_rng, snrs)
    t0 = time.perf_counter()
    _timed_round(algorithm, evaluator, 1, rng, snrs)
    warmups.append(time.perf_counter() - t0)
    if ideal_alg is not None:
        _timed_round(ideal_alg, None, 1, ideal_rng, snrs)
    _floor_round(pieces, batches)
    warmup = sum(warmups)
    log("  warm-up rounds: " + ", ".join(f"{w:.1f} s" for w in warmups))
    # Python's cyclic garbage collector: a full collection walks every tracked
    # object, 0.3 to 0.8 s in a bench's heap (federations, Keras models, traced
    # functions), and one that lands in a timed round put that round 0.3 to 0.4 s
    # above its neighbours while the pieces timed beside it were not. What the
    # warm-up built is frozen (collections then walk only what the timed rounds
    # allocate), and garbage is collected before each timed piece.
    with _frozen_heap():
        # Real round, ideal-link round and floor in turn, so drift in the machine's
        # speed hits all three alike.
        timed, ideal_times, floors, paired, rss = [], [], [], [], {}
        if paired_floor is not None:
            paired_floor()  # once untimed: it last ran in another bench
        first = WARMUP_ROUNDS
        for t in range(first, first + rounds):
            gc.collect()
            r = _timed_round(algorithm, evaluator, t, rng, snrs)
            timed.append(r)
            line = f"  round {t}: training {r.train:.2f} s, evaluation {r.evaluation:.2f} s"
            if ideal_alg is not None:
                gc.collect()
                ideal_times.append(_timed_round(ideal_alg, None, t, ideal_rng, snrs).train)
                line += f", ideal-link training {ideal_times[-1]:.2f} s"
            gc.collect()
            floors.append(_floor_round(pieces, batches))
            line += f", floor {floors[-1]:.2f} s"
            if paired_floor is not None:
                gc.collect()
                paired.append(paired_floor())
                line += f", paired floor {paired[-1]:.2f} s"
            log(line)
            if t in rss_rounds:
                gc.collect()
                rss[t] = current_rss_mib()
        del ideal_alg
        components = {name: 0.0 for name in ("encoders", "uplink", "decoders", "downlink")}
        for key, n in batches.items():
            for name in components:
                piece = pieces[key][name]
                own = _timed(piece, repeats) - _timed(_empty_call(piece), repeats)
                components[name] += n * max(own, 0.0)
        for t in range(first + rounds, max([first + rounds - 1, *rss_rounds]) + 1):
            _timed_round(algorithm, None, t, rng, snrs)
            if t in rss_rounds:
                gc.collect()
                rss[t] = current_rss_mib()
                log(f"  round {t}: RSS {rss[t]:.0f} MiB")
    return BenchResult(
        config=config,
        num_clients=k,
        architectures=len(algorithm.workspaces),
        warmup_s=warmup,
        rounds=timed,
        components=components,
        floor_rounds=floors,
        ideal_train_rounds=ideal_times,
        # the reference federation (when built) would inflate the peak: take it before
        peak_rss_mib=peak if ideal_times else peak_rss_mib(),
        rss_by_round=rss,
        device=device_summary(),
        paired_floor_rounds=paired,
        floor_fn=partial(_floor_round, pieces, batches) if keep_floor else None,
    )


def _steps_per_round(config: RunConfig, algorithm) -> dict[int, int]:
    from semfed.federation import batch_schedule

    cfg = config.training
    rng = np.random.default_rng(0)
    return {
        c.id: batch_schedule(
            c.num_train, cfg.batch_size, cfg.local_epochs, cfg.local_iterations, rng
        ).shape[0]
        for c in algorithm.clients
    }


def format_result(res: BenchResult) -> str:
    train = res.mean("train")
    lines = [
        f"device: {res.device}; precision: {res.precision} (the floor at the same precision); "
        f"link compiled with XLA: {'yes' if res.config.link.jit_compile else 'no'}",
        f"K = {res.num_clients}, {res.architectures} architecture(s); per round, mean of "
        f"{len(res.rounds)} rounds after {WARMUP_ROUNDS} warm-up rounds ({res.warmup_s:.1f} s):",
        f"  {'local training (all clients)':<34} {train:8.3f} s",
    ]
    for name, label in (
        ("encoders", "client encoders fwd+bwd (attrib.)"),
        ("uplink", "uplink (attrib.)"),
        ("decoders", "decoders fwd+bwd (attrib.)"),
        ("downlink", "downlink (attrib.)"),
    ):
        lines.append(f"    {label:<32} {res.components[name]:8.3f} s")
    other = train - sum(res.components.values())
    lines.append(f"    {'other (Python, copies, dispatch)':<32} {other:8.3f} s")
    if other < 0:
        lines.append(
            "      (below 0: the pieces cost more called one by one than inside the\n"
            "       pass's single compiled loop; the attribution overestimates them)"
        )
    lines += [
        f"  {'SCG':<34} {res.mean('scg'):8.3f} s",
        f"  {'aggregation':<34} {res.mean('aggregation'):8.3f} s",
        f"  {'training round (sum of the above)':<34} {res.round_s:8.3f} s",
        f"  {'evaluation (reported apart)':<34} {res.mean('evaluation'):8.3f} s",
        f"  {'  per round at every = ' + str(res.config.evaluation.every):<34} "
        f"{res.mean('evaluation') / res.config.evaluation.every:8.3f} s "
        f"({100 * res.evaluation_share:.1f} % of a round with its evaluation)",
        f"  {'images per second (training)':<34} {res.mean('images') / res.round_s:8.0f}",
        f"  {'compute floor (plain Keras steps)':<34} {res.floor_s:8.3f} s",
    ]
    if res.ideal_train_s is not None:
        lines.append(f"  {'local training, ideal link':<34} {res.ideal_train_s:8.3f} s")
    lines.append(f"  {'peak RSS':<34} {res.peak_rss_mib:8.0f} MiB")
    lines.append("ratios:")
    for name, value in res.ratios().items():
        lines.append(f"  {name:<34} {value:8.3f}")
    intervals = res.ratio_intervals()
    if intervals and len(res.rounds) > 1:
        lines.append(
            f"round by round ({len(res.rounds)} rounds; mean and 95 % interval, "
            "the machine's noise):"
        )
        for name, i in intervals.items():
            lines.append(f"  {name:<34} {i.mean:8.3f}  [{i.low:.3f}, {i.high:.3f}]")
    if res.rss_by_round:
        items = sorted(res.rss_by_round.items())
        lines.append("RSS after round: " + ", ".join(f"{t}: {v:.0f} MiB" for t, v in items))
        if len(items) >= 2:
            (t_a, a), (t_b, b) = items[0], items[-1]
            lines.append(f"  RSS growth from round {t_a} to {t_b}: {100 * (b - a) / a:+.1f} %")
    return "\n".join(lines)


def format_precision_comparison(f32: BenchResult, bf16: BenchResult) -> str:
    """float32 against bfloat16, measured in turn in one process; with the float32
    floor timed again after each bfloat16 round (``bf16.paired_floor_rounds``), also
    the ratios round by round with their 95 % interval, which the machine's drift
    between the two benches does not enter."""
    rows = [
        ("training round, float32", f32.round_s),
        ("training round, bfloat16", bf16.round_s),
        ("compute floor, float32", f32.floor_s),
        ("compute floor, bfloat16", bf16.floor_s),
    ]
    lines = ["precision comparison (one process, in turn):"]
    lines += [f"  {name:<34} {value:8.3f} s" for name, value in rows]
    lines += [
        f"  {'bfloat16 round / float32 round':<34} {bf16.round_s / f32.round_s:8.3f}",
        f"  {'bfloat16 round / float32 floor':<34} {bf16.round_s / f32.floor_s:8.3f}",
        f"  {'bfloat16 floor / float32 floor':<34} {bf16.floor_s / f32.floor_s:8.3f}",
    ]
    paired = bf16.paired_floor_rounds
    if paired:
        by_round = {
            "bfloat16 round / float32 floor": [
                r.round_s / f for r, f in zip(bf16.rounds, paired, strict=True)
            ],
            "bfloat16 floor / float32 floor": [
                b / f for b, f in zip(bf16.floor_rounds, paired, strict=True)
            ],
        }
        lines.append(
            f"  with the float32 floor timed after each bfloat16 round"
            f" ({float(np.mean(paired)):.3f} s; mean and 95 % interval over"
            f" {len(paired)} rounds):"
        )
        for name, values in by_round.items():
            i = mean_interval(values)
            spread = f"  [{i.low:.3f}, {i.high:.3f}]" if i.n > 1 else ""
            lines.append(f"  {name:<34} {i.mean:8.3f}{spread}")
    return "\n".join(lines)


def format_setting_comparison(key: str, values: Sequence[str], results: Sequence[Any]) -> str:
    """Benches of ``key`` = each of ``values``, measured in turn in one process: each
    training round and compute floor, and its ratios against the first value's (the
    round ratio is what a target such as "N_r = 4 within 1.3 x N_r = 1" reads; the
    floors show how far the machine's speed moved between the benches)."""
    first = results[0]
    lines = [f"{key} comparison (one process, in turn; ratios against {key}={values[0]}):"]
    lines.append(
        f"  {'value':<12} {'round [s]':>10} {'floor [s]':>10} {'round ratio':>12} "
        f"{'floor ratio':>12} {'round/floor':>12}"
    )
    for value, res in zip(values, results, strict=True):
        lines.append(
            f"  {value:<12} {res.round_s:10.3f} {res.floor_s:10.3f} "
            f"{res.round_s / first.round_s:12.3f} {res.floor_s / first.floor_s:12.3f} "
            f"{res.round_s / res.floor_s:12.3f}"
        )
    return "\n".join(lines)


def linear_fit(ks: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b k -> (a, b, R^2)."""
    k, y = np.asarray(ks, float), np.asarray(ys, float)
    b, a = np.polyfit(k, y, 1)
    resid = y - (a + b * k)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (resid**2).sum() / total if total > 0 else 1.0
    return float(a), float(b), float(r2)


__all__ = [
    "BenchResult",
    "format_precision_comparison",
    "format_result",
    "linear_fit",
    "run_bench",
]
