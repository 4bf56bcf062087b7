"""Trace a link's graph with the fixed tensors of its Sionna blocks as constants.

Sionna's blocks keep fixed tensors made when they are built (pilots, resource
grid indices, the TDL model's delays and powers, interpolation weights). A
``tf.function`` captures each of them as an *input* of the traced function, so
every call passes them again: the link's function had 25 inputs besides the
features and N0. Under XLA each input costs the launch a few microseconds;
measured here (one 2-core Xeon, 29 Nov), a compiled function with 24 captured
48-value tensors took 160 us a call against 19 us with the same values as
constants of the graph, and the launch of the default link spent 100 to 220 us
before its computation started.

:func:`constants_inlined` swaps every such tensor held by the given objects
(and by the Sionna blocks and plain containers they hold) for a constant
made in the graph being traced, and puts the original tensors back when the
trace is over. The values are the same, so what the link computes is the same
(to float32 rounding: XLA may fold the constants into the arithmetic).
Variables (the random generator's state) stay what they are.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import tensorflow as tf

# Objects of these packages are searched for tensors; anything else (TensorFlow's
# own objects, NumPy arrays) is left alone.
_SEARCHED_PACKAGES = ("sionna", "phy")


def _is_eager_tensor(value: Any) -> bool:
    return (
        isinstance(value, tf.Tensor)
        and not isinstance(value, tf.Variable)
        and hasattr(value, "numpy")
        and not tf.is_symbolic_tensor(value)
    )


def _searched(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module.split(".")[0] in _SEARCHED_PACKAGES and hasattr(value, "__dict__")


def _slots(roots: tuple[Any, ...]) -> list[tuple[Any, Any, tf.Tensor]]:
    """(holder, key, tensor) for every eager tensor reachable from ``roots`` through
    the attributes of the roots, of the Sionna / phy objects they hold and of lists
    and dicts."""
    found: list[tuple[Any, Any, tf.Tensor]] = []
    seen: set[int] = set()
    stack = list(roots)
    root_ids = {id(r) for r in roots}
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            items = list(obj.items())
        elif isinstance(obj, list):
            items = list(enumerate(obj))
        elif _searched(obj) or (id(obj) in root_ids and hasattr(obj, "__dict__")):
            items = list(vars(obj).items())
        else:
            continue
        for key, value in items:
            if _is_eager_tensor(value):
                found.append((obj, key, value))
            elif isinstance(value, dict | list) or _searched(value):
                stack.append(value)
    return found


def _put(holder: Any, key: Any, value: Any) -> None:
    if isinstance(holder, dict | list):
        holder[key] = value
    else:
        # object.__setattr__: past any __setattr__ of the class (attribute tracking
        # or validation), which a swap for the time of a trace must not trigger.
        object.__setattr__(holder, key, value)


@contextmanager
def constants_inlined(*roots: Any) -> Iterator[int]:
    """Inside a trace, hold the fixed tensors of ``roots`` as constants of the graph.

    Outside a trace (eagerly) it changes nothing. Yields how many tensors it swapped.
    """
    if tf.executing_eagerly():
        yield 0
        return
    slots = _slots(roots)
    # One constant per distinct tensor (a tensor held in two places stays one).
    constants: dict[int, tf.Tensor] = {}
    for holder, key, tensor in slots:
        if id(tensor) not in constants:
            constants[id(tensor)] = tf.constant(tensor.numpy(), dtype=tensor.dtype)
        _put(holder, key, constants[id(tensor)])
    try:
        yield len(constants)
    finally:
        for holder, key, tensor in slots:
            _put(holder, key, tensor)


def inlining_constants(fn: Callable, *roots: Any, autograph: bool = False) -> Callable:
    """``fn`` run under :func:`constants_inlined` (``roots``): for ``tf.function``.

    Sionna's blocks build themselves on their first call, eagerly (under
    ``tf.init_scope``), and a build may read the block's tensors, which must not
    be graph constants then. So the first trace of ``fn`` is preceded by a trace
    of it in a throwaway function (``autograph`` as the real one), which builds
    the blocks and runs nothing.
    """
    built = [False]

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        if not built[0] and not tf.executing_eagerly():
            specs = tf.nest.map_structure(
                lambda a: tf.TensorSpec.from_tensor(a) if tf.is_tensor(a) else a, (args, kwargs)
            )
            tf.function(fn, autograph=autograph).get_concrete_function(*specs[0], **specs[1])
            built[0] = True
        with constants_inlined(*roots):
            return fn(*args, **kwargs)

    return traced
