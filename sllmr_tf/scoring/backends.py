"""Scorer backends by name: the one place that knows which module implements which scorer.

Each backend module exposes `create(data_dir, **options) -> Backend` and is
imported only when asked for, so the `openai` scorer never loads Keras and the
`embedding` scorer never needs a server.
"""
from __future__ import annotations

import importlib

from sllmr_tf.scoring.base import Backend

BACKEND_MODULES = {
    "embedding": "sllmr_tf.scoring.embedding_backend",
    "openai": "sllmr_tf.scoring.openai_backend",
    "simulated": "sllmr_tf.scoring.simulated_backend",
}


def backend_names() -> tuple[str, ...]:
    return tuple(BACKEND_MODULES)


def make_backend(name: str, data_dir: str, **options) -> Backend:
    """The backend `name` for the prepared dataset in `data_dir`, built with `options`."""
    if name not in BACKEND_MODULES:
        raise ValueError(f"unknown scorer {name!r}; choose one of {', '.join(BACKEND_MODULES)}")
    return importlib.import_module(BACKEND_MODULES[name]).create(data_dir, **options)
