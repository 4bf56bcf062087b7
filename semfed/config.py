"""Run configuration: frozen dataclasses loaded from TOML, overridable, validated.

A run config has the sections ``data``, ``partition``, ``model``, ``link``,
``algorithm``, ``training``, ``evaluation`` and ``output`` (and ``drop``, which
a run with ``link.topology`` writes: :class:`DropRecord`). Each section is a
frozen dataclass; :func:`load_config` reads a TOML file, applies ``--set``
overrides (``training.rounds=5``) and builds the dataclasses, checking every key,
type and range. Errors are :class:`ConfigError` with a one-line message naming
the key, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from phy.config import LinkConfig, per_user_snr_db
from semfed.errors import ConfigError


def _invalid(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{key} = {value!r} is not allowed: {allowed}")


class _FieldError(ValueError):
    """Raised inside ``__post_init__``; the loader adds the section to the key."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key} = {value!r} is not allowed: {allowed}")


def _require(ok: bool, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise _FieldError(key, value, allowed)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from.

    ``name`` is a tensorflow-datasets name (cifar10, mnist, fashion_mnist, cifar100,
    svhn_cropped) or ``synthetic``. ``path`` points at a local copy (official
    CIFAR-10 python archive or folder, a class-folder tree, or a tar of one); when
    unset the environment variable ``SEMFED_DATA`` is used, then tensorflow-datasets.
    """

    name: str = "cifar10"
    path: str | None = None
    cache_dir: str | None = None  # default: $SEMFED_CACHE or ~/.cache/semfed
    # Synthetic data (name = "synthetic"): learnable class-dependent images.
    synthetic_classes: int = 10
    synthetic_train_per_class: int = 200
    synthetic_test_per_class: int = 50
    synthetic_image_size: int = 32

    def __post_init__(self) -> None:
        _require(bool(self.name), "name", self.name, "a dataset name")
        _require(self.synthetic_classes >= 2, "synthetic_classes", self.synthetic_classes, ">= 2")
        _require(
            self.synthetic_train_per_class >= 1,
            "synthetic_train_per_class",
            self.synthetic_train_per_class,
            ">= 1",
        )
        _require(
            self.synthetic_test_per_class >= 1,
            "synthetic_test_per_class",
            self.synthetic_test_per_class,
            ">= 1",
        )
        _require(
            self.synthetic_image_size >= 8 and self.synthetic_image_size % 4 == 0,
            "synthetic_image_size",
            self.synthetic_image_size,
            "a multiple of 4, >= 8",
        )


@dataclass(frozen=True)
class PartitionConfig:
    """How the training data is split among the K clients.

    ``mway``: each client gets ``ways`` (m) distinct random classes and ``shots`` (q)
    samples of each, disjoint across clients. ``ways_spread`` / ``shots_spread``
    draw each client's m and q uniformly from [m - s, m + s] and [q - s, q + s] (as
    FedProto's ``stdev``). When ``total`` is set, q = total // (K * m) (constant
    total data, the paper's Fig. 3). ``dirichlet``: per-class proportions across
    clients drawn from Dirichlet(alpha), over ``total`` samples (all when unset).
    Each client's test set holds ``test_shots`` samples of each class it owns.
    """

    scheme: Literal["mway", "dirichlet"] = "mway"
    num_clients: int = 20
    ways: int = 5
    shots: int = 100
    ways_spread: int = 0
    shots_spread: int = 0
    total: int | None = None
    alpha: float = 0.5
    test_shots: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        _require(self.num_clients >= 1, "num_clients", self.num_clients, "K >= 1")
        _require(self.ways >= 1, "ways", self.ways, "m >= 1")
        _require(self.shots >= 1, "shots", self.shots, "q >= 1")
        _require(self.ways_spread >= 0, "ways_spread", self.ways_spread, ">= 0")
        _require(
            0 <= self.shots_spread < self.shots,
            "shots_spread",
            self.shots_spread,
            f">= 0 and < shots ({self.shots})",
        )
        _require(self.total is None or self.total >= 1, "total", self.total, ">= 1, or unset")
        _require(self.alpha > 0, "alpha", self.alpha, "alpha > 0")
        _require(self.test_shots >= 0, "test_shots", self.test_shots, ">= 0")


@dataclass(frozen=True)
class ModelConfig:
    """Encoders (per client), global decoder and semantic centroid generator."""

    encoders: Literal["heterogeneous", "homogeneous"] = "heterogeneous"
    feature_dim: int = 64
    encoder_width: int = 64
    decoder_hidden: tuple[int, ...] = (256,)
    scg_hidden: int = 128
    scg_input_dim: int = 64
    # Batch-norm moving-average momentum of the encoders. Keras's 0.99 averages
    # over ~100 steps, but a client takes ~16 local steps a round while its weights
    # move: the inference statistics lag the weights and every scheme's test
    # accuracy dips for 10-20 rounds (docs/algorithms.md, "Batch normalization").
    bn_momentum: float = 0.9

    def __post_init__(self) -> None:
        _require(
            self.feature_dim >= 2 and self.feature_dim % 2 == 0,
            "feature_dim",
            self.feature_dim,
            "an even integer >= 2 (d real values become d/2 complex symbols)",
        )
        _require(self.encoder_width >= 1, "encoder_width", self.encoder_width, ">= 1")
        _require(
            all(h >= 1 for h in self.decoder_hidden),
            "decoder_hidden",
            self.decoder_hidden,
            "layer widths >= 1",
        )
        _require(self.scg_hidden >= 1, "scg_hidden", self.scg_hidden, ">= 1")
        _require(self.scg_input_dim >= 1, "scg_input_dim", self.scg_input_dim, ">= 1")
        _require(0.0 <= self.bn_momentum < 1.0, "bn_momentum", self.bn_momentum, ">= 0 and < 1")


ALGORITHMS = ("fedcl", "fedavg", "fedproto", "fedcl-nocentroid", "fedcl-meancentroid")


@dataclass(frozen=True)
class AlgorithmConfig:
    """The federated algorithm and its regularisation.

    ``name``: ``fedcl`` (Algorithm 1), ``fedavg`` (full local models, all parameters
    averaged), ``fedproto`` (full local models regularised towards global prototypes,
    no parameter averaging), ``fedcl-nocentroid`` (FedCL with lambda = 0: split
    learning with decoder averaging only; ``lam`` is ignored) and
    ``fedcl-meancentroid`` (FedCL whose global centroids are the D_k-weighted mean of
    the clients' local centroids instead of the SCG output).

    ``lam`` multiplies the centroid distance of eq. 10 averaged over the d feature
    dimensions (``reg_reduction = "mean"``, FedProto's MSE) or summed over them
    (``"sum"``, the paper's squared norm; lambda then needs to be about d times
    smaller).

    ``fedavg_norm``: what FedAvg does with the encoders' normalization layers
    (batch-norm scale, offset and moving statistics): ``"average"`` them with the
    other parameters (the paper's baseline) or keep them ``"local"`` to each
    client (FedBN). ``reset_optimizer``: zero a client's optimizer state (moments
    and step count) whenever its weights are replaced by an average (FedAvg: the
    whole model; FedCL and its ablations: the BS's decoder instance phi_k).

    ``fedcl_encoders``: FedCL's encoders stay ``"personal"`` (the paper), or are
    ``"averaged"`` after every round with weights D_k / D, batch norm kept local
    as in FedBN: a diagnostic that gives up personalisation to measure what the
    personal encoders cost (needs identical encoders; FedCL and its ablations only).
    """

    name: Literal["fedcl", "fedavg", "fedproto", "fedcl-nocentroid", "fedcl-meancentroid"] = "fedcl"
    lam: float = 1.0
    # FedBN measured stronger at the paper's setting (docs/algorithms.md, "Tuning FedAvg").
    fedavg_norm: Literal["average", "local"] = "local"
    reset_optimizer: bool = False
    fedcl_encoders: Literal["personal", "averaged"] = "personal"
    reg_reduction: Literal["mean", "sum"] = "mean"
    scg_loss: Literal["infonce", "printed"] = "infonce"
    temperature: float = 0.5
    scg_normalize: bool = True
    scg_steps: int = 5
    scg_lr: float = 0.001

    def __post_init__(self) -> None:
        _require(self.lam >= 0, "lam", self.lam, "lambda >= 0")
        _require(self.temperature > 0, "temperature", self.temperature, "> 0")
        _require(self.scg_steps >= 0, "scg_steps", self.scg_steps, "E' >= 0")
        _require(self.scg_lr > 0, "scg_lr", self.scg_lr, "> 0")
        _require(
            self.fedcl_encoders == "personal" or self.name.startswith("fedcl"),
            "fedcl_encoders",
            self.fedcl_encoders,
            f'"personal" with algorithm.name = {self.name!r} (averaged: FedCL only)',
        )


@dataclass(frozen=True)
class TrainingConfig:
    """Rounds, local work, optimizers (paper: 200 rounds, Adam at 0.001) and precision.

    ``precision``: ``"float32"``, or ``"bfloat16"`` for Keras's mixed_bfloat16
    policy in the encoders, decoders and SCG (bfloat16 compute, float32 weights
    and optimizer state); their outputs (features, logits, centroids), the
    losses and the radio link stay float32. Fast on CPUs with AVX-512 BF16 or
    AMX and on recent GPUs; slow where the hardware lacks bfloat16.

    ``weight_gradient``: ``"auto"`` writes the encoders' late convolutions as matrix
    products where oneDNN's bfloat16 kernels are slow (bfloat16, no GPU;
    semfed/convolution.py): the kernel gradient at outputs of at most 8 x 8, and
    the whole convolution (forward and both gradients) at outputs of at most
    4 x 4 (a CPU with AMX) or 2 x 2 (without) with an even kernel; the same sums
    in another order. ``"native"``
    always uses TensorFlow's kernels. float32 runs are the same either way.

    ``fused_adam``: Adam's update of each variable in one fused kernel
    (:class:`semfed.optimizers.FusedAdam`, the same update as Keras's to
    rounding); false keeps Keras's element-wise kernels.

    ``fused_batch_norm``: the encoders' batch norm trained through one fused
    kernel forward and one backward
    (:class:`semfed.normalization.FusedBatchNormalization`, the same equations
    and moving averages as Keras's to rounding); false keeps Keras's layer.
    """

    rounds: int = 200
    batch_size: int = 32
    local_epochs: int = 1
    local_iterations: int | None = None  # E; overrides local_epochs when set
    client_optimizer: Literal["adam", "sgd"] = "adam"
    client_lr: float = 0.001
    server_optimizer: Literal["adam", "sgd"] = "adam"
    server_lr: float = 0.001
    seed: int = 0
    checkpoint_every: int = 10
    precision: Literal["float32", "bfloat16"] = "float32"
    weight_gradient: Literal["auto", "native"] = "auto"
    fused_adam: bool = True
    fused_batch_norm: bool = True

    def __post_init__(self) -> None:
        _require(self.rounds >= 1, "rounds", self.rounds, ">= 1")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        _require(self.local_epochs >= 1, "local_epochs", self.local_epochs, ">= 1")
        _require(
            self.local_iterations is None or self.local_iterations >= 1,
            "local_iterations",
            self.local_iterations,
            ">= 1, or unset",
        )
        _require(self.client_lr > 0, "client_lr", self.client_lr, "> 0")
        _require(self.server_lr > 0, "server_lr", self.server_lr, "> 0")
        _require(self.checkpoint_every >= 1, "checkpoint_every", self.checkpoint_every, ">= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """When, at which SNR(s) and how the clients' test sets are scored.

    ``snr_db`` unset: the link's uplink SNR. A list evaluates at each SNR.

    Every evaluation records three protocols (docs/experiments.md, "Scoring"):
    ``global`` (the shared model: FedCL's aggregated decoder, FedAvg's global
    model, FedProto's nearest global prototype), ``personal`` (the client's own
    decoder) and ``masked`` (``personal`` with the logits restricted to the
    client's own classes). ``protocol`` names the one that ``test_acc`` and
    ``final_test_acc`` stand for.

    ``final_window``: ``final_test_acc`` is the mean over the last this many
    evaluations (fewer when the run has fewer), never the best round.
    """

    every: int = 1
    snr_db: float | tuple[float, ...] | None = None
    batch_size: int = 500
    protocol: Literal["global", "personal", "masked"] = "global"
    final_window: int = 5

    def __post_init__(self) -> None:
        _require(self.every >= 1, "every", self.every, ">= 1")
        _require(self.final_window >= 1, "final_window", self.final_window, ">= 1")
        _require(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")
        _require(
            not (isinstance(self.snr_db, tuple) and not self.snr_db),
            "snr_db",
            self.snr_db,
            "a number, a non-empty list, or unset",
        )


@dataclass(frozen=True)
class OutputConfig:
    dir: str | None = None
    tensorboard: bool = True
    progress: bool = True


@dataclass(frozen=True)
class DropRecord:
    """The cell drop of a run with ``link.topology`` set, as the run resolved it.

    Not an input: :func:`semfed.cell.resolve_drop` draws the drop from
    ``partition.seed`` and writes it to the run's ``config.toml`` as ``[drop]``,
    one value per client; a config that carries it (a run's own config.toml) is
    checked against the drop drawn again. Readers that group runs by setting
    ignore it (it changes with the seed). Empty (and not written) otherwise.

    distance_2d_m : [K] ground distance to the BS
    los, indoor : [K] line of sight, indoor (with outdoor-to-indoor loss)
    path_loss_db, shadow_fading_db : [K] the losses of 38.901 (shadow fading as a loss)
    uplink_snr_db, downlink_snr_db : [K] each user's link-budget SNR (before
        ``link.topology_snr = "median"``, if set, puts every user at the median)
    """

    distance_2d_m: tuple[float, ...] = ()
    los: tuple[bool, ...] = ()
    indoor: tuple[bool, ...] = ()
    path_loss_db: tuple[float, ...] = ()
    shadow_fading_db: tuple[float, ...] = ()
    uplink_snr_db: tuple[float, ...] = ()
    downlink_snr_db: tuple[float, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in dataclasses.fields(self))


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    drop: DropRecord = field(default_factory=DropRecord)

    def __post_init__(self) -> None:
        k = self.partition.num_clients
        if not self.drop.is_empty:
            if not self.link.has_topology:
                raise ConfigError(
                    "[drop] is not allowed with link.topology unset or 'none': a run writes "
                    "it for a cell drop (remove the section)"
                )
            for f in dataclasses.fields(DropRecord):
                value = getattr(self.drop, f.name)
                if len(value) != k:
                    raise ConfigError(
                        f"drop.{f.name} = {list(value)!r} is not allowed: exactly "
                        f"partition.num_clients = {k} values (one per user)"
                    )
        for key in ("uplink_snr_db", "downlink_snr_db"):
            value = getattr(self.link, key)
            if isinstance(value, tuple) and len(value) != k:
                raise ConfigError(
                    f"link.{key} = {list(value)!r} is not allowed: a number or a list of "
                    f"exactly partition.num_clients = {k} values (one per user)"
                )
        averaging = (
            "algorithm.name = 'fedavg'"
            if self.algorithm.name == "fedavg"
            else "algorithm.fedcl_encoders = 'averaged'"
            if self.algorithm.fedcl_encoders == "averaged"
            else None
        )
        if averaging and self.model.encoders == "heterogeneous":
            raise ConfigError(
                f"model.encoders = 'heterogeneous' is not allowed with {averaging}: "
                "averaging the encoders' parameters needs identical encoders "
                '(set model.encoders = "homogeneous")'
            )

    def to_dict(self) -> dict[str, Any]:
        d = _to_plain(dataclasses.asdict(self))
        if self.drop.is_empty:
            del d["drop"]
        if self.link.has_topology:
            # Unused (the drop gives every SNR) and refused when set: not written.
            for key in ("uplink_snr_db", "downlink_snr_db"):
                d["link"].pop(key)
        return d

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    def hash(self) -> str:
        """Short hash of the resolved config, independent of the output section.

        With ``link.topology`` set it covers the link budget with its defaults
        resolved (``link.link_budget``), so a run made before a default changed
        (a BS power, say) hashes differently from the same file planned today.
        """
        d = self.to_dict()
        d.pop("output", None)
        d.pop("drop", None)  # derived from the other keys
        if self.link.has_topology:
            d["link_budget"] = _to_plain(dataclasses.asdict(self.link.link_budget))
        blob = json.dumps(d, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def uplink_snrs(self) -> tuple[float, ...]:
        """Each client's uplink SNR [dB]: the typed one(s), or the cell drop's."""
        if self.link.has_topology:
            return self._drop_snrs(self.drop.uplink_snr_db)
        return per_user_snr_db(self.link.uplink_snr_db, self.partition.num_clients)

    def downlink_snrs(self) -> tuple[float, ...]:
        """Each client's downlink SNR [dB]: the typed one(s), or the cell drop's."""
        if self.link.has_topology:
            return self._drop_snrs(self.drop.downlink_snr_db)
        return per_user_snr_db(self.link.downlink_snr_db, self.partition.num_clients)

    def _drop_snrs(self, snrs: tuple[float, ...]) -> tuple[float, ...]:
        if self.drop.is_empty:
            raise ConfigError(
                f"link.topology = {self.link.topology!r}: the drop is not drawn yet "
                "(semfed.cell.resolve_drop gives each client's SNR)"
            )
        if self.link.link_budget.topology_snr == "median":
            return (float(statistics.median(snrs)),) * len(snrs)
        return tuple(float(v) for v in snrs)


# ---------------------------------------------------------------- building


_PLURALS = {int: "integers", float: "finite numbers", str: "strings", bool: "booleans"}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        return "a list of " + _PLURALS.get(inner, _type_name(inner))
    if tp is type(None):
        return "unset (none)"
    return {
        int: "an integer",
        float: "a finite number",
        str: "a string",
        bool: "true or false",
    }.get(tp, getattr(tp, "__name__", str(tp)))


_NO_MATCH = object()


def _coerce(tp: Any, value: Any) -> Any:
    """Convert a TOML value to ``tp``, or return ``_NO_MATCH``."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return value if value in typing.get_args(tp) else _NO_MATCH
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            out = _coerce(arg, value)
            if out is not _NO_MATCH:
                return out
        return _NO_MATCH
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            return _NO_MATCH
        inner = typing.get_args(tp)[0]
        items = [_coerce(inner, v) for v in value]
        return _NO_MATCH if any(i is _NO_MATCH for i in items) else tuple(items)
    if tp is type(None):
        return None if value is None or value == "none" else _NO_MATCH
    if tp is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO_MATCH
    if tp is float:
        # TOML reads nan and inf as floats; no setting means anything with them.
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if ok and math.isfinite(value) else _NO_MATCH
    if tp is str:
        return value if isinstance(value, str) else _NO_MATCH
    raise TypeError(f"unsupported config type {tp!r}")


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"[{prefix}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in hints:
            raise ConfigError(
                f"unknown key '{full}' (valid keys{' in [' + prefix + ']' if prefix else ''}: "
                f"{', '.join(names)})"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, full)
            continue
        out = _coerce(tp, value)
        if out is _NO_MATCH:
            raise _invalid(full, value, _type_name(tp))
        kwargs[key] = out
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as err:
        key = getattr(err, "key", None)
        if key is None:
            raise
        full = f"{prefix}.{key}" if prefix else key
        raise _invalid(full, getattr(err, "value", None), getattr(err, "allowed", "")) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``section.key=value``; the value is read as TOML, else taken as a string."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    path, raw = text.split("=", 1)
    keys = [k.strip() for k in path.strip().split(".")]
    if not all(keys):
        raise ConfigError(f"--set {text!r}: empty key in {path!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    out = json.loads(json.dumps(data))  # deep copy of plain data
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {text!r}: '{k}' is not a section")
        node[keys[-1]] = value
    return out


def config_from_dict(data: Mapping[str, Any], overrides: Sequence[str] = ()) -> RunConfig:
    return _build(RunConfig, apply_overrides(dict(data), overrides), "")


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a TOML run config (or the defaults when ``path`` is None) and validate it."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{p}: not valid TOML: {err}") from None
    return config_from_dict(data, overrides)


def replace(config: RunConfig, **sections: Mapping[str, Any]) -> RunConfig:
    """A copy of ``config`` with some section keys changed, validated again."""
    d = config.to_dict()
    for name, changes in sections.items():
        d.setdefault(name, {}).update(changes)
    return config_from_dict(d)


# ---------------------------------------------------------------- writing


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_to_plain(v) for v in obj]
    return obj


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def dumps_toml(data: Mapping[str, Mapping[str, Any]]) -> str:
    """Write a two-level mapping (sections of scalars and lists) as TOML."""
    lines: list[str] = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        lines.append("")
    return "\n".join(lines)
