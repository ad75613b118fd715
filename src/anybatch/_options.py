"""The knobs every processor takes: declared once here, validated in one place.

Every processor's ``__init__`` takes them as ``**options: Unpack[ProcessorOptions]`` and hands
them on whole, so a knob added here reaches every processor (the SQS ones included) without
a signature to copy. :func:`check_options` is the one validation.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final, Literal, TypedDict, TypeGuard, cast

from ._exceptions import MissingDependencyError

__all__ = [
    "BACKENDS",
    "DEFAULT_DEADLINE_MARGIN",
    "POLICY_OPTIONS",
    "ProcessorOptions",
    "RunOptions",
    "check_backend",
    "check_options",
    "is_int",
]

#: Seconds kept free before the Lambda timeout when a context is given: time to build and
#: return the response (and to let abandoned work be ignored).
DEFAULT_DEADLINE_MARGIN: Final = 1.0

BACKENDS: Final = ("asyncio", "trio")


class RunOptions(TypedDict, total=False):
    """How a processor runs its records: the knobs every processor takes."""

    concurrency: int | None
    record_timeout: float | None
    deadline_margin: float | None
    backend: Literal["asyncio", "trio"]
    log_records: int
    observers: Iterable[Any] | None
    permanent: Iterable[type[BaseException]] | type[BaseException] | None
    on_permanent_failure: Callable[[Any, BaseException], Awaitable[object]] | None


class ProcessorOptions(RunOptions, total=False):
    """:class:`RunOptions` and the ordering and failure policy.

    The FIFO processors take :class:`RunOptions` only: ``skip_group_on_error`` is their policy.
    """

    stop_on_failure: bool
    skip_key_on_failure: bool | None
    ordered: bool


#: The policy knobs, which a FIFO processor derives from ``skip_group_on_error``.
POLICY_OPTIONS: Final = ("stop_on_failure", "skip_key_on_failure", "ordered")

#: Every knob's default, but ``concurrency``'s: that is the processor class's own.
DEFAULTS: Final[Mapping[str, Any]] = {
    "record_timeout": None,
    "deadline_margin": DEFAULT_DEADLINE_MARGIN,
    "backend": "asyncio",
    "log_records": 10,
    "observers": (),
    "permanent": (),
    "on_permanent_failure": None,
    "stop_on_failure": False,
    "skip_key_on_failure": None,
    "ordered": True,
}


def is_int(value: object) -> TypeGuard[int]:
    """Whether *value* is an int and not a bool (``True`` is an ``int`` to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_backend(backend: object) -> Literal["asyncio", "trio"]:
    """*backend* if it names a backend this machine can run; a clear error otherwise."""
    if backend == "asyncio":
        return "asyncio"
    if backend != "trio":
        raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
    import importlib.util

    if importlib.util.find_spec("trio") is None:
        raise MissingDependencyError("backend='trio' needs trio: pip install 'anybatch[trio]'")
    return "trio"


def _seconds(name: str, value: object, *, zero: bool) -> float | None:
    if value is None:
        return None
    if not (is_int(value) or isinstance(value, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero):
        raise ValueError(f"{name} must be {'>= 0' if zero else '> 0'}, got {value!r}")
    return seconds


def _concurrency(value: object) -> int | None:
    if value is None:
        return None
    if not is_int(value):
        raise TypeError(f"concurrency must be a positive int or None (unbounded), got {value!r}")
    if value < 1:
        raise ValueError(f"concurrency must be >= 1 or None (unbounded), got {value}")
    return value


def _flag(name: str, value: object, *, none: bool = False) -> bool | None:
    if value is None and none:
        return None
    if not isinstance(value, bool):
        allowed = "a bool or None" if none else "a bool"
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    return value


def _log_records(value: object) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"log_records must be an int >= 0, got {value!r}")
    return value


def _observers(value: object) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"observers must be an iterable of observers, got {value!r}")
    return tuple(cast("Iterable[Any]", value))  # type: ignore[redundant-cast]


def _permanent(value: object) -> tuple[type[BaseException], ...]:
    """The exception types besides ``PermanentFailure`` that make a failure permanent."""
    if value is None:
        return ()
    types = (value,) if isinstance(value, type) else value
    if isinstance(types, str | bytes) or not isinstance(types, Iterable):
        raise TypeError(f"permanent must be exception types, got {value!r}")
    found = tuple(cast("Iterable[object]", types))
    for item in found:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise TypeError(f"permanent must be Exception subclasses, got {item!r} in {value!r}")
    return cast("tuple[type[BaseException], ...]", found)


def _hook(value: object) -> Callable[..., Any] | None:
    """``on_permanent_failure``: ``None``, or an async function of ``(record, error)``."""
    if value is None:
        return None
    import inspect  # only when a hook is given

    call: object = getattr(type(value), "__call__", None)  # noqa: B004 - an async __call__
    if not callable(value) or not (
        inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(call)
    ):
        raise TypeError(
            "on_permanent_failure must be an async function: "
            f"async def on_permanent_failure(record, error): ..., got {value!r}"
        )
    return cast("Callable[..., Any]", value)


_CHECKS: Final[Mapping[str, Callable[[object], object]]] = {
    "concurrency": _concurrency,
    "record_timeout": lambda value: _seconds("record_timeout", value, zero=False),
    "deadline_margin": lambda value: _seconds("deadline_margin", value, zero=True),
    "backend": check_backend,
    "log_records": _log_records,
    "observers": _observers,
    "stop_on_failure": lambda value: _flag("stop_on_failure", value),
    "skip_key_on_failure": lambda value: _flag("skip_key_on_failure", value, none=True),
    "ordered": lambda value: _flag("ordered", value),
    "permanent": _permanent,
    "on_permanent_failure": _hook,
}


def check_options(
    options: Mapping[str, object], owner: str, default_concurrency: int | None
) -> dict[str, Any]:
    """Every knob's value for a processor of class *owner*: *options* checked, defaults filled.

    An unknown name raises :class:`TypeError` as Python does for an unexpected keyword,
    listing the knobs; a value of the wrong type or range raises with the knob's name.
    """
    unknown = [name for name in options if name not in _CHECKS]
    if unknown:
        raise TypeError(
            f"{owner}() got an unexpected keyword argument {unknown[0]!r}; the processor "
            f"knobs are {', '.join(_CHECKS)}"
        )
    settings = {"concurrency": default_concurrency, **DEFAULTS}
    for name, value in options.items():
        settings[name] = _CHECKS[name](value)
    return settings
