"""Which raw input and settings a dataset was prepared from: its fingerprint.

Every later artifact records the fingerprint of the dataset it was made from
(the pairs summaries, train_config.json, the export's sllmr_run.json), and
every consumer compares it with the dataset it is given
(`DatasetDir.check_lineage`). The fingerprint hashes the prepare settings
without `raw_dir` (where the files lie is not what they hold, so the same data
under another path spelling is the same dataset) and each raw file's name, size
and BLAKE2b checksum, streamed through fileio in 1 MiB blocks: one pass over
the raw files, far cheaper than prepare itself.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from sllmr_tf import fileio
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.records import RawSource

LOCATION_FIELDS = ("raw_dir",)
_BLOCK = 1 << 20


def file_digest(path: str) -> dict:
    """{"name", "size", "blake2b"} of one raw file."""
    digest = hashlib.blake2b(digest_size=16)
    size = 0
    with fileio.open_binary_stream(path) as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return {"name": fileio.basename(path), "size": size, "blake2b": digest.hexdigest()}


def settings(config: dict) -> dict:
    """The prepare config fields (as stats.json stores them) that change the data."""
    return {k: v for k, v in json.loads(json.dumps(config, default=str)).items() if k not in LOCATION_FIELDS}


def dataset_lineage(config: PrepareConfig, source: RawSource) -> dict:
    """The stats.json fields naming the dataset version: dataset_fingerprint and raw_files.

    Args:
        config: the prepare settings.
        source: the raw source they name; its `raw_files()` are read once, streaming.
    """
    # A missing file is the reader's to report, with its name and the flag to fix.
    raw_files = [file_digest(path) for path in source.raw_files() if fileio.exists(path)]
    text = json.dumps({"settings": settings(dataclasses.asdict(config)), "raw_files": raw_files}, sort_keys=True)
    return {"dataset_fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16], "raw_files": raw_files}


def differences(old: dict, new: dict) -> list[str]:
    """What differs between two datasets' stats (config and raw_files), in words, by key."""
    old_settings, new_settings = settings(old.get("config", {})), settings(new["config"])
    out = [f"{key} {old_settings.get(key)!r} -> {new_settings.get(key)!r}"
           for key in sorted(set(old_settings) | set(new_settings)) if old_settings.get(key) != new_settings.get(key)]
    old_files = {f["name"]: f for f in old.get("raw_files", [])}
    new_files = {f["name"]: f for f in new["raw_files"]}
    for name in sorted(set(old_files) | set(new_files)):
        before, after = old_files.get(name), new_files.get(name)
        if before is None:
            out.append(f"raw file {name} added")
        elif after is None:
            out.append(f"raw file {name} gone")
        elif before["size"] != after["size"]:
            out.append(f"raw file {name} {before['size']:,} -> {after['size']:,} bytes")
        elif before["blake2b"] != after["blake2b"]:
            out.append(f"raw file {name} content changed")
    return out or ["dataset_fingerprint (not recorded by the run that prepared it)"]
