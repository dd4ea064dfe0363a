"""absl flags derived from config dataclasses: one flag per `options.option` field.

Each binary calls `define(ConfigClass)` at import and `build(ConfigClass)` in
main, so a setting's default, help and choices live in its dataclass only.
Nested config dataclasses (ScoreConfig.candidates) contribute their fields as
flags of their own name.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Iterable

from absl import flags

from sllmr_tf import options
from sllmr_tf.errors import ConfigError

FLAGS = flags.FLAGS
# The flags defined below belong to the binary that calls `define`, so its --help lists them.
flags.disclaim_key_flags()


def _fields(config_cls: type) -> Iterable[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        yield field, hints[field.name]


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without `| None`, whether None is allowed)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _is_config(annotation: Any) -> bool:
    return isinstance(annotation, type) and dataclasses.is_dataclass(annotation)


def define(config_cls: type, exclude: Iterable[str] = (), flag_values: flags.FlagValues = FLAGS) -> list[str]:
    """Define a flag for every option field of `config_cls` (and of nested configs).

    Args:
        config_cls: a dataclass whose flag fields are declared with `options.option`.
        exclude: field names that this binary sets itself.
        flag_values: where to define the flags.

    Returns:
        The names of the flags defined, in declaration order.
    """
    exclude = set(exclude)
    names = []
    for field, annotation in _fields(config_cls):
        if field.name in exclude:
            continue
        if _is_config(annotation):
            names += define(annotation, exclude, flag_values)
            continue
        if not options.is_option(field):
            continue
        kind, optional = _base_type(annotation)
        required = field.default is dataclasses.MISSING
        default = None if required else field.default
        doc = field.metadata["help"]
        common = dict(flag_values=flag_values, required=required)
        choices = options.choices_of(field)
        if kind is bool:
            flags.DEFINE_bool(field.name, default, doc, **common)
        elif kind is int:
            flags.DEFINE_integer(field.name, default, doc, **common)
        elif kind is float:
            flags.DEFINE_float(field.name, default, doc, **common)
        elif kind is str and choices is not None:
            flags.DEFINE_enum(field.name, default, list(choices), doc, **common)
        elif kind is str:
            flags.DEFINE_string(field.name, default, doc, **common)
        elif typing.get_origin(kind) is tuple:
            flags.DEFINE_list(field.name, None if default is None else [str(v) for v in default], doc, **common)
        else:
            raise TypeError(f"{config_cls.__name__}.{field.name}: no flag type for {annotation!r}")
        names.append(field.name)
    return names


def build(config_cls: type, flag_values: flags.FlagValues = FLAGS, **fixed: Any) -> Any:
    """An instance of `config_cls` from the parsed flags; `fixed` sets the excluded fields.

    Raises:
        ConfigError: a list flag holds a value of the wrong type.
    """
    values = {}
    for field, annotation in _fields(config_cls):
        if field.name in fixed:
            values[field.name] = fixed[field.name]
        elif _is_config(annotation):
            values[field.name] = build(annotation, flag_values, **fixed)
        elif options.is_option(field):
            values[field.name] = _converted(field.name, annotation, flag_values[field.name].value)
    return config_cls(**values)


def _converted(name: str, annotation: Any, value: Any) -> Any:
    kind, _ = _base_type(annotation)
    if value is None or typing.get_origin(kind) is not tuple:
        return value
    item = typing.get_args(kind)[0]
    try:
        return tuple(item(v) for v in value)
    except ValueError:
        raise ConfigError(f"--{name} must be a comma-separated list of {item.__name__}s, "
                          f"got {','.join(value)}") from None
