"""Validation of config dataclass fields: one error format for every config in the project.

Every check raises ``ValueError('<name>=<value!r> is out of range; allowed: <range>')`` where
``name`` is the field as a user writes it (``cem.num_samples``, ``lr``, a ROS parameter name),
so a message names the field, the value and what is allowed. Configs call these from
``__post_init__``; ``bool`` is never accepted where a number is expected (``True == 1``).
"""
from __future__ import annotations

import math
from typing import Any
from collections.abc import Iterable


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raise the standard ValueError for ``name`` unless ``ok``."""
    if not ok:
        raise ValueError(f'{name}={value!r} is out of range; allowed: {allowed}')


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> None:
    """An integer in [minimum, maximum] (either bound may be None)."""
    low = '-inf' if minimum is None else str(minimum)
    high = 'inf' if maximum is None else str(maximum)
    allowed = f'an integer >= {minimum}' if maximum is None and minimum is not None else \
        f'an integer in [{low}, {high}]'
    require(_is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum),
            name, value, allowed)


def check_ints(prefix: str, obj: Any, names: Iterable[str], minimum: int) -> None:
    """check_int on several attributes of ``obj``; errors name them ``prefix + attribute``."""
    for attribute in names:
        check_int(f'{prefix}{attribute}', getattr(obj, attribute), minimum)


def check_number(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
                 exclusive_minimum: bool = False, exclusive_maximum: bool = False) -> None:
    """A finite number in the interval given by the bounds ('(' / ')' when exclusive)."""
    ok = _is_number(value) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if exclusive_minimum else value >= minimum
    if ok and maximum is not None:
        ok = value < maximum if exclusive_maximum else value <= maximum
    left = '(' if exclusive_minimum or minimum is None else '['
    right = ')' if exclusive_maximum or maximum is None else ']'
    low = '-inf' if minimum is None else f'{minimum:g}'
    high = 'inf' if maximum is None else f'{maximum:g}'
    require(ok, name, value, f'a finite number in {left}{low}, {high}{right}')


def check_positive(name: str, value: Any) -> None:
    """A finite number > 0."""
    check_number(name, value, minimum=0.0, exclusive_minimum=True)


def check_bool(name: str, value: Any) -> None:
    require(isinstance(value, bool), name, value, 'true or false')


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    """One of ``choices``."""
    options = tuple(choices)
    require(value in options, name, value, f'one of {list(options)}')
