"""Checks of plain Python values (hyper-parameters, config keys, flags) and the message style.

Every message reads ``"<fn>: expected `<arg>` <what was expected>, got <what came>"``. Nothing
here imports torch, so the command line and the trainer's config stay quick to load;
:mod:`losskit._checks` re-exports these beside the tensor checks. The switch for the checks that
read tensor values (:func:`set_checks`, :func:`checks`) lives here too, for the same reason.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import NoReturn

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "checks",
    "checks_enabled",
    "closest",
    "did_you_mean",
    "fail",
    "set_checks",
    "shape_str",
]


def shape_str(shape: Iterable[int]) -> str:
    """Format a shape as ``(2, 3)``; a 1-tuple keeps its comma: ``(31,)``."""
    dims = tuple(int(d) for d in shape)
    return str(dims)


def fail(
    fn: str, arg: str, expected: str, got: object, *, kind: type[Exception] = ValueError
) -> NoReturn:
    """Raise ``kind`` with the project's one message style."""
    raise kind(f"{fn}: expected `{arg}` {expected}, got {got}")


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (case-insensitive), or ``None`` if nothing is close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[match[0]] if match else None


def did_you_mean(name: object, choices: Iterable[str], *, form: str = "'{}'") -> str:
    """``" (did you mean 'x'?)"`` naming the choice closest to ``name`` (:func:`closest`), or
    ``""`` when none is close; ``form`` formats the choice (``"`{}`"`` for config keys,
    ``"--{}"`` for flags).

    >>> did_you_mean("hubr", ["huber", "mse"])
    " (did you mean 'huber'?)"
    """
    hint = closest(name, choices) if isinstance(name, str) else None
    return f" (did you mean {form.format(hint)}?)" if hint else ""


def check_choice(fn: str, arg: str, value: object, choices: Sequence[str]) -> str:
    """``value`` must be one of ``choices``; the error suggests the closest one."""
    if isinstance(value, str) and value in choices:
        return value
    listed = ", ".join(repr(c) for c in choices)
    fail(fn, arg, f"one of {listed}", f"{value!r}{did_you_mean(value, choices)}")


def check_number(
    fn: str,
    arg: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number within ``[low, high]`` (an end is excluded when ``*_open``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        fail(fn, arg, "to be a real number", type(value).__name__, kind=TypeError)
    v = float(value)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if not math.isfinite(v) or too_low or too_high:
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        finite = "to be a finite number " if not math.isfinite(v) else ""
        fail(fn, arg, f"{finite}in {left}{lo}, {hi}{right}", f"{value!r}")
    return v


def check_bool(fn: str, arg: str, value: object) -> bool:
    """A ``bool`` flag (not an int or a tensor)."""
    if not isinstance(value, bool):
        fail(fn, arg, "to be a bool", type(value).__name__, kind=TypeError)
    return value


def check_int(fn: str, arg: str, value: object, *, low: int | None = None) -> int:
    """An integer (not a bool), at least ``low`` when given."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(fn, arg, "to be an integer", type(value).__name__, kind=TypeError)
    if low is not None and value < low:
        fail(fn, arg, f"to be an integer >= {low}", f"{value!r}")
    return value


# --------------------------------------------------------------------------------------------
# The switch for the checks that read tensor values
# --------------------------------------------------------------------------------------------

_values_checked = True


def checks_enabled() -> bool:
    """Whether the losses check tensor values (see :func:`set_checks`); ``True`` by default."""
    return _values_checked


def set_checks(enabled: bool) -> None:
    """Turn the value checks of every loss on or off, for the whole process.

    Shape, dtype and hyper-parameter checks always run: they read metadata only. The checks that
    read tensor values — class indices within ``[0, C)``, targets within their range, logits
    that look like probabilities — copy a result from the device to the host, which on a GPU
    waits for all queued work (a host sync). Once a pipeline is known to feed valid data, turn
    them off (torchmetrics' ``validate_args`` idea); a loss call then makes no host sync.
    :func:`checks` does the same for a ``with`` block.

    Args:
        enabled (bool): ``False`` skips the value checks.

    Raises:
        TypeError: if ``enabled`` is not a bool.

    Example:
        >>> import losskit
        >>> losskit.set_checks(False)
        >>> losskit.checks_enabled()
        False
        >>> losskit.set_checks(True)
    """
    global _values_checked
    _values_checked = check_bool("set_checks", "enabled", enabled)


@contextlib.contextmanager
def checks(enabled: bool) -> Iterator[None]:
    """``with losskit.checks(False):`` — value checks on or off inside the block, then restored.

    Example:
        >>> import losskit
        >>> with losskit.checks(False):
        ...     losskit.checks_enabled()
        False
        >>> losskit.checks_enabled()
        True
    """
    check_bool("checks", "enabled", enabled)
    previous = checks_enabled()
    set_checks(enabled)
    try:
        yield
    finally:
        set_checks(previous)
