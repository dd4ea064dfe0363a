"""Scorer backends by name.

Each backend module exposes `create(data_dir, **options) -> Backend` and is
imported only when asked for, so the `openai` scorer never loads Keras and the
`embedding` scorer never needs a server.
"""
from __future__ import annotations

import inspect
import json
from typing import Sequence

from sllmr_tf.errors import ConfigError
from sllmr_tf.registry import Registry
from sllmr_tf.scoring.base import Backend

SCORERS = Registry("scorer", {
    "embedding": "sllmr_tf.scoring.embedding_backend:create",
    "openai": "sllmr_tf.scoring.openai_backend:create",
    "simulated": "sllmr_tf.scoring.simulated_backend:create",
})


def make_backend(name: str, data_dir: str, **options) -> Backend:
    """The backend `name` for the prepared dataset in `data_dir`, built with `options`.

    Raises:
        ConfigError: an unknown scorer, or an option the scorer does not take.
    """
    create = SCORERS.get(name)
    accepted = sorted(set(inspect.signature(create).parameters) - {"data_dir"})
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"the {name} scorer has no option {', '.join(unknown)}; its options: {', '.join(accepted)}")
    return create(data_dir, **options)


def scorer_options(entries: Sequence[str]) -> dict:
    """--scorer_option key=value entries as keyword options (JSON values where they parse)."""
    options = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise ConfigError(f"--scorer_option must be key=value, got {entry!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
