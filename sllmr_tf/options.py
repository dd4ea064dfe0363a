"""Config dataclass fields that carry their own documentation, so flags can be derived from them.

A field declared with `option(default, help, choices)` is a command-line flag
of every binary that takes that config: the default, the help text and the
allowed values live here, in the dataclass, and nowhere else.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable

_MISSING: Any = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", choices: Iterable[str] | Callable[[], Iterable[str]] | None = None):
    """A dataclass field that is also a flag; `default` omitted makes the flag required.

    Args:
        default: the one default value of the setting.
        help: the flag's documentation.
        choices: allowed string values, or a function returning them (evaluated
            when flags are defined, so registries can list their names lazily).

    Returns:
        A `dataclasses.field` with the help and choices in its metadata.
    """
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


def choices_of(field: dataclasses.Field) -> tuple[str, ...] | None:
    """The allowed values of an `option` field, or None if any value is allowed."""
    choices = field.metadata.get("choices")
    if choices is None:
        return None
    return tuple(choices() if callable(choices) else choices)


def is_option(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("help"))
