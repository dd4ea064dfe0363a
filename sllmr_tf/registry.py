"""One registry style for every pluggable part: raw sources, scorers, backbones.

A registry maps a name to "module:attribute" and imports the module when the
name is first used, so listing the names (for a flag's choices or --help)
imports nothing heavy, and a registry holds everything it registers: there
is no import side effect to remember elsewhere.
"""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from sllmr_tf.errors import ConfigError


class Registry:
    """Names of one kind of part (e.g. "backbone") and where each is implemented."""

    def __init__(self, kind: str, entries: Mapping[str, str]):
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def get(self, name: str) -> Any:
        """The implementation registered as `name`, imported now if it was not yet.

        Raises:
            ConfigError: no such name (the message lists the known ones).
        """
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self._entries)}")
        module, attribute = self._entries[name].split(":")
        return getattr(importlib.import_module(module), attribute)
