"""`prepare`: raw source -> a complete dataset directory (see dataset_dir.py).

The work is one Apache Beam pipeline (prepare_pipeline.py) on the runner the
`RunnerConfig` names: this machine by default, or Dataflow, Flink or Spark.
Here, in the driver, the dataset is published. On a local data_dir the
pipeline fills a temporary sibling directory, named so that a later run can
tell it belongs to a killed process and remove it
(`fileio.owned_temporary_sibling`); when the pipeline succeeds, its summary
becomes stats.json, written last, and the directory is renamed into place.
On a URL data_dir (no atomic directory rename,
`fileio.renames_directories_atomically`) the pipeline writes into data_dir
itself, emptied first, stats.json first of all removed and last written. Either
way a killed run never leaves a dataset that looks complete (no stats.json),
the next run replaces what it left, and a rerun with the same settings and raw
files (the same `lineage.dataset_lineage` fingerprint) is a no-op.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

from sllmr_tf import fileio, segments
from sllmr_tf.data import beam_runner, dataset_dir, lineage as lineage_lib, prepare_pipeline
from sllmr_tf.data.config import PrepareConfig, RunnerConfig
from sllmr_tf.data.records import RawSource
from sllmr_tf.errors import ArtifactError, DataError

Log = Callable[[str], None]
WORK_DIR = ".pipeline"  # inside the temporary directory: the pipeline's summary for the driver
TEMPORARY_TAGS = ("prepare", "old")
COLD_USER_WARNING = 0.5  # share of cold-start users above which prepare warns


def prepare(config: PrepareConfig, source: RawSource, data_dir: str, overwrite: bool = False,
            log: Log = print, runner: RunnerConfig = RunnerConfig()) -> dict:
    """Build `data_dir` from `source`; idempotent for the same config and raw files.

    Args:
        config: the prepare settings (validated here).
        source: the raw source the config names (`readers.open_source(config)`).
        data_dir: the output directory; replaced only with `overwrite`.
        overwrite: replace a dataset prepared from other settings or raw files.
        log: where progress lines go.
        runner: where the pipeline runs (default: this process).

    Returns:
        The dataset's stats (the content of stats.json).

    Raises:
        UserError: bad config, bad records, data too small to split, or an existing
            dataset of other settings or raw files without `overwrite`.
    """
    config.validate()
    beam_runner.pipeline_options(runner)  # refuses bad runner options before any work
    lineage = {"config": dataclasses.asdict(config), **lineage_lib.dataset_lineage(config, source)}
    existing = fileio.read_json(fileio.join(data_dir, dataset_dir.STATS_FILE))
    if existing is not None:
        if existing.get("dataset_fingerprint") == lineage["dataset_fingerprint"]:
            log(f"{data_dir} is already prepared from these raw files with these settings; nothing to do")
            return existing
        if not overwrite:
            raise ArtifactError(f"{data_dir} holds a dataset prepared from other input "
                                f"({'; '.join(lineage_lib.differences(existing, lineage))}); "
                                "pass --overwrite to replace it")
    if not fileio.renames_directories_atomically(data_dir):
        return _build_in_place(config, source, data_dir, runner, log, lineage)
    for path in fileio.remove_abandoned_siblings(data_dir, TEMPORARY_TAGS):
        log(f"removed {path}, left by a run that was killed")
    tmp = fileio.owned_temporary_sibling(data_dir, "prepare")
    try:
        fileio.makedirs(tmp)  # a read-only or full parent is refused here, before the pipeline runs
        stats = _build(config, source, tmp, runner, log, lineage)
        _replace_dir(tmp, data_dir)
    except BaseException:
        fileio.rmtree(tmp)
        raise
    return stats


def _build_in_place(config: PrepareConfig, source: RawSource, data_dir: str, runner: RunnerConfig, log: Log,
                    lineage: dict) -> dict:
    """Build the dataset in data_dir itself, where no directory rename publishes it atomically: what
    is there (another dataset, or a killed run's part) goes first, its stats.json before the rest,
    so no reader ever trusts a mix; a failed build removes what it wrote."""
    stats_path = fileio.join(data_dir, dataset_dir.STATS_FILE)
    with fileio.writing(data_dir):  # a read-only store is refused here, before the pipeline runs
        if fileio.exists(stats_path):
            fileio.remove(stats_path)
        fileio.rmtree(data_dir)
    try:
        fileio.makedirs(data_dir)
        return _build(config, source, data_dir, runner, log, lineage)
    except BaseException:
        fileio.rmtree(data_dir)
        raise


def _replace_dir(tmp: str, data_dir: str) -> None:
    if fileio.exists(data_dir):
        old = fileio.owned_temporary_sibling(data_dir, "old")
        fileio.rename(data_dir, old)
        fileio.rename(tmp, data_dir)
        fileio.rmtree(old)
    else:
        fileio.rename(tmp, data_dir)


def _build(config: PrepareConfig, source: RawSource, out: str, runner: RunnerConfig, log: Log,
           lineage: dict) -> dict:
    started = time.time()
    work = fileio.join(out, WORK_DIR)
    log(f"prepare pipeline: {beam_runner.describe(runner)}")
    beam_runner.run(lambda pipeline: prepare_pipeline.build(pipeline, config, source, out, work, log), runner)
    summary = prepare_pipeline.read_summary(work)
    fileio.rmtree(work)
    read, items = summary.get("item_rows_read", 0), summary.get("item_ids_read", 0)
    skipped = summary["bad_records_skipped"]
    log(f"read {items:,} items" + (f" ({read - items:,} duplicate ids ignored)" if read > items else ""))
    log(f"read {summary['interactions_read']:,} interactions "
        f"({summary['interactions_read'] - summary.get('pairs_read', 0):,} repeated user-item pairs merged)"
        + (f", skipped {sum(skipped.values())} bad records" if skipped else ""))
    if summary.get("ids_stripped"):
        log(f"stripped surrounding spaces from the ids of {summary['ids_stripped']:,} interactions")
    if not summary.get("users"):
        raise DataError(f"{config.dataset}: no interactions left after reading and filtering")
    splits = {name: summary[name] for name in dataset_dir.SPLITS}
    _check_splits(splits, summary["users"], summary["max_events"], config)
    for name, counts in splits.items():
        log(f"{name}: {counts['examples']:,} examples in {config.num_shards} shards")
    for warning in split_warnings(splits, summary["users"], summary["cold_start_users"], config):
        log(f"warning: {warning}")
    stats = {
        "dataset": config.dataset,
        "num_users": summary["users"],
        "num_items": summary["num_items"],
        "num_interactions": summary["events"],
        "num_positive_interactions": summary["positive_events"],
        "segments": {
            "cold_start_users": summary["cold_start_users"],
            "long_tail_items": summary["long_tail_items"],
            "cold_start_definition": segments.COLD_START_DEFINITION,
            "long_tail_definition": segments.LONG_TAIL_DEFINITION,
        },
        "splits": splits,
        "vocab_sizes": {"user": summary["users"], **summary["vocab"]},
        "bad_records_skipped": skipped,
        "ids_stripped": summary.get("ids_stripped", 0),
        "shards": {name: dataset_dir.shard_sizes(out, name) for name in dataset_dir.SPLITS},
        **lineage,
        "prepare_seconds": round(time.time() - started, 2),
    }
    fileio.write_json(fileio.join(out, dataset_dir.STATS_FILE), stats)
    return stats


def _check_splits(splits: dict[str, dict], num_users: int, most: int, config: PrepareConfig) -> None:
    """Every split needs positive and negative examples: training learns from train, early
    stopping reads valid, the metrics read test.

    Args:
        splits: per split, its counts (`prepare_pipeline.segment_counts`, summed).
        num_users: users in the dataset.
        most: the most events of one user (repeated items merged).
        config: the prepare settings.

    Raises:
        DataError: naming the split, what it lacks and what to change.
    """
    for name, counts in splits.items():
        positives, negatives = counts["positives"], counts["examples"] - counts["positives"]
        if positives and negatives:
            continue
        if name != "train" and most < 2:
            reason = (f"no user has more than 1 interaction ({num_users:,} users): leave-last-out "
                      "needs users with at least 2")
        elif name == "valid" and most < 3:
            reason = ("no user has more than 2 interactions: a valid event needs a third one "
                      "(train, valid, test); gather more interactions per user")
        elif not positives:
            reason = (f"no positive events (rating >= {config.positive_threshold:g} under label_rule "
                      f"{config.label_rule}); lower --positive_threshold or use --label_rule=implicit")
        else:
            option = "--train_negatives" if name == "train" else "--eval_negatives"
            reason = f"no negative events; set {option} >= 1"
        raise DataError(f"{config.dataset}: the {name} split has {positives:,} positive and "
                        f"{negatives:,} negative examples: {reason}")


def split_warnings(splits: dict[str, dict], num_users: int, cold_users: int, config: PrepareConfig) -> list[str]:
    """What makes a split a poor experiment while still usable: most users cold-start, or a test
    split larger than train (leave-last-k-out on users with few events). With the numbers."""
    warnings = []
    if cold_users > COLD_USER_WARNING * num_users:
        warnings.append(f"{cold_users:,} of {num_users:,} users ({cold_users / num_users:.0%}) are cold-start "
                        f"({segments.COLD_START_DEFINITION}) after leave-last-{config.test_k}-out; a smaller "
                        "--test_k / --valid_k leaves more of each user's events in train")
    train, test = splits["train"]["examples"], splits["test"]["examples"]
    if test > train:
        warnings.append(f"test has {test:,} examples, train {train:,}: the model learns from less than it is "
                        "tested on; lower --test_k or --eval_negatives")
    return warnings
