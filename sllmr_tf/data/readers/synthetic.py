"""The synthetic world as a raw source, plus its ground truth for the dataset dir.

The world is generated in memory from a `WorldConfig`: read from
`raw_dir/world.json` when a raw dir is given, with any `synthetic_*` flag that
is not None overriding a field. After `prepare` has built the vocabularies it
calls `write_extras`, which stores the true preferences aligned to vocab
indices, so the simulated LLM and the gate tests can measure true correctness.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterator

from sllmr_tf import fileio
from sllmr_tf.data.config import SYNTHETIC_FLAGS
from sllmr_tf.data.dataset_dir import GROUND_TRUTH_FILE
from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo
from sllmr_tf.data.synthetic_world import (SyntheticWorld, WorldConfig, config_path, generate_world,
                                           load_config)
from sllmr_tf.errors import ConfigError


class SyntheticSource:
    """A seeded Amazon-like world; ids look like 'u00042' and 'i00017'."""

    name = "synthetic"

    def __init__(self, raw_dir: str | None = None, **flags):
        unknown = sorted(k for k in flags if k.startswith("synthetic_") and k not in SYNTHETIC_FLAGS)
        if unknown:
            raise ConfigError(f"unknown synthetic flag(s) {unknown}; known: {sorted(SYNTHETIC_FLAGS)}")
        base = load_config(config_path(raw_dir)) if raw_dir else WorldConfig()
        overrides = {field: flags[flag] for flag, field in SYNTHETIC_FLAGS.items() if flags.get(flag) is not None}
        self.config = dataclasses.replace(base, **overrides)
        self._raw_dir = raw_dir

    @functools.cached_property
    def world(self) -> SyntheticWorld:
        return generate_world(self.config)

    def interaction_parts(self) -> list[str]:
        return ["world"]  # generated in one piece

    def raw_files(self) -> list[str]:
        """The world config file, when there is one; the world itself is generated from it."""
        return [config_path(self._raw_dir)] if self._raw_dir else []

    def interactions(self, policy: BadRecordPolicy, part: str | None = None) -> Iterator[Interaction]:
        """Every interaction, grouped by user in time order (generated records are never bad)."""
        w = self.world
        for user, item, rating, timestamp in zip(w.users.tolist(), w.items.tolist(),
                                                 w.ratings.tolist(), w.timestamps.tolist()):
            yield Interaction(w.user_ids[user], w.item_ids[item], rating, timestamp)

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]:
        """Every item of the catalogue, including those nobody interacted with."""
        w, t = self.world, self.world.texts
        for k, item in enumerate(w.item_ids):
            yield ItemInfo(item, title=t.titles[k], category=t.categories[k], brand=t.brands[k],
                           description=t.descriptions[k])

    def write_extras(self, data_dir: str, vocabs: dict[str, list[str]]) -> None:
        """Write data_dir/ground_truth.npz with rows aligned to vocabs['user'] and vocabs['item']."""
        self.world.truth.save(fileio.join(data_dir, GROUND_TRUTH_FILE), vocabs["user"], vocabs["item"])
