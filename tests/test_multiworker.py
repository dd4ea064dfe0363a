"""Multi-worker training: two sllmr-train processes on 127.0.0.1 under MultiWorkerMirroredStrategy,
each on its own data shards and their pairs, the chief alone writing the run; and a worker
killed mid-epoch, after which the job is restarted and resumes."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import prepare_dataset
from sllmr_tf import shards
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring.config import ScoreConfig
from sllmr_tf.training import distribution

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_SHARDS, SCORERS, WORKERS = 4, 2, 2


@pytest.fixture(scope="module")
def sharded_world(tmp_path_factory) -> tuple[str, str]:
    """A synthetic world in 4 data shards, scored by 2 scorer processes."""
    from sllmr_tf.scoring import pipeline
    from sllmr_tf.scoring.backends import make_backend

    root = tmp_path_factory.mktemp("sharded_world")
    data_dir, pairs_dir = str(root / "data"), str(root / "pairs")
    prepare_dataset(data_dir, dataset="synthetic", num_shards=DATA_SHARDS,
                    source_options=(("synthetic_users", 120), ("synthetic_items", 200)))
    for j in range(SCORERS):
        pipeline.score(data_dir, make_backend("simulated", data_dir), pairs_dir,
                       ScoreConfig(shard_index=j, num_shards=SCORERS, num_orders=1), log=lambda _: None)
    return data_dir, pairs_dir


def test_pair_files_hold_the_users_of_their_data_shard_and_map_onto_workers(sharded_world):
    data_dir, pairs_dir = sharded_world
    user_shards = DatasetDir(data_dir).user_shards()
    found, count = pairs_dir_lib.pair_files(pairs_dir)
    assert count == DATA_SHARDS and sorted(found) == list(range(DATA_SHARDS))
    for s, path in found.items():
        users = pairs_dir_lib.read_pairs(pairs_dir, [path])["user_id"]
        assert users.size and set(user_shards[users]) == {s}
    for j in range(SCORERS):
        with open(pairs_dir_lib.summary_path(pairs_dir, j, SCORERS)) as f:
            assert json.load(f)["data_shards"] == [s for s in range(DATA_SHARDS) if s % SCORERS == j]
    for k in range(WORKERS):
        assert pairs_dir_lib.worker_pair_files(pairs_dir, k, WORKERS) == [
            found[s] for s in range(DATA_SHARDS) if s % WORKERS == k]
    assert pairs_dir_lib.scored_dataset(pairs_dir) == DatasetDir(data_dir).fingerprint


def test_a_scorer_process_that_has_not_run_leaves_the_pairs_dir_refused(sharded_world, tmp_path):
    from sllmr_tf.errors import ArtifactError
    from sllmr_tf.scoring import pipeline
    from sllmr_tf.scoring.backends import make_backend

    data_dir, _ = sharded_world
    pipeline.score(data_dir, make_backend("simulated", data_dir), str(tmp_path),
                   ScoreConfig(shard_index=1, num_shards=SCORERS, max_lists=20), log=lambda _: None)
    with pytest.raises(ArtifactError, match=r"no pair file for data shards \[0, 2\] of 4; run the sllmr-score"):
        pairs_dir_lib.scored_dataset(str(tmp_path))


def test_summaries_of_the_old_one_file_per_process_layout_are_refused(sharded_world, tmp_path):
    from sllmr_tf import fileio
    from sllmr_tf.errors import ArtifactError

    with shards.ShardWriter(pairs_dir_lib.pair_shard_path(str(tmp_path), 0, 1)):
        pass
    fileio.write_json(pairs_dir_lib.summary_path(str(tmp_path), 0, 1), {"pairs": {"written": 1}})
    with pytest.raises(ArtifactError, match=r"summary-00000-of-00001.json: written by an older sllmr-score"):
        pairs_dir_lib.scored_dataset(str(tmp_path))


# --- two worker processes ---------------------------------------------------------------------


class Cluster:
    """Two sllmr-train workers on 127.0.0.1; worker 0 is the chief. Logs go to files."""

    def __init__(self, tmp_path, data_dir: str, pairs_dir: str, *flags: str):
        self.workers = distribution.local_cluster(WORKERS)
        self.tmp_path, self.model_dir = tmp_path, str(tmp_path / "model")
        self.args = [sys.executable, "-m", "sllmr_tf.bins.train", "--strategy=multi_worker", f"--data_dir={data_dir}",
                     f"--pairs_dir={pairs_dir}", "--method=sllmr", f"--model_dir={self.model_dir}",
                     "--batch_size=64", "--num_bootstrap=5", "--mlp_units=16", "--embedding_dim=8", *flags]
        self.procs: dict[int, subprocess.Popen] = {}
        self.starts = 0

    def start(self, index: int) -> None:
        env = {**os.environ, distribution.TF_CONFIG: distribution.tf_config(self.workers, index),
               "PYTHONUNBUFFERED": "1"}
        self.starts += 1
        log = open(self.log_path(index), "a")
        self.procs[index] = subprocess.Popen(self.args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_path(self, index: int) -> str:
        return str(self.tmp_path / f"worker-{index}.log")

    def log(self, index: int) -> str:
        with open(self.log_path(index)) as f:
            return f.read()

    def wait(self, timeout: float = 120) -> list[int]:
        return [self.procs[i].wait(timeout) for i in range(WORKERS)]

    def wait_for(self, index: int, pattern: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while not re.search(pattern, self.log(index)):
            assert time.time() < deadline and self.procs[index].poll() is None, self.log(index)
            time.sleep(0.1)

    def digests(self) -> list[str]:
        return [re.findall(r"backbone weights digest (\w+)", self.log(i))[-1] for i in range(WORKERS)]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(sharded_world, tmp_path, request):
    made = []

    def make(*flags):
        made.append(Cluster(tmp_path, *sharded_world, *flags))
        return made[-1]

    yield make
    for c in made:
        c.stop()


def _loaded_pairs(log: str) -> tuple[list[int], int, int]:
    match = re.search(r"data shards \[([\d, ]+)\]: training .* ([\d,]+) LLM pairs for ([\d,]+) users", log)
    assert match, log
    return ([int(s) for s in match.group(1).split(",")], int(match.group(2).replace(",", "")),
            int(match.group(3).replace(",", "")))


@pytest.mark.slow
def test_two_workers_train_in_step_survive_a_kill_by_a_restart_and_only_the_chief_writes_the_run(
        cluster, sharded_world):
    """One scenario, for CI's time: two workers start; worker 1 is killed in epoch 2, which
    fails the chief too (the contract of MultiWorkerMirroredStrategy: a lost peer fails the
    others' collectives); restarting both resumes at the backup epoch and the run finishes."""
    from sllmr_tf.training import artifacts
    from sllmr_tf.training.distribution import weights_digest

    data_dir, pairs_dir = sharded_world
    run = cluster("--epochs=2", "--patience=5")
    for i in range(WORKERS):
        run.start(i)
    run.wait_for(0, r"Epoch 2/2")
    time.sleep(0.3)
    os.kill(run.procs[1].pid, signal.SIGKILL)
    assert run.procs[0].wait(90) != 0
    for i in range(WORKERS):
        run.start(i)
    assert run.wait() == [0, 0], run.log(0) + run.log(1)
    for i in range(WORKERS):
        assert "resumed from the backup checkpoint at epoch 2" in run.log(i)

    chief, worker = run.digests()
    assert chief == worker == weights_digest(artifacts.load_backbone(run.model_dir))
    assert os.path.exists(os.path.join(run.model_dir, artifacts.METRICS))
    assert not os.path.exists(f"{run.model_dir}.worker-1")
    assert not [d for d, _, _ in os.walk(run.model_dir) if "workertemp" in d]
    val_aucs = [re.findall(r"val_auc: ([\d.]+)", run.log(i)) for i in range(WORKERS)]
    assert val_aucs[0] == val_aucs[1]  # the same early-stopping evidence on both workers
    assert all(0 < float(auc) < 1 for auc in val_aucs[0])  # one worker's AUC, not a sum over workers

    user_shards = DatasetDir(data_dir).user_shards()
    for i in range(WORKERS):
        data_shards, pairs, users = _loaded_pairs(run.log(i))
        assert data_shards == [s for s in range(DATA_SHARDS) if s % WORKERS == i]
        mine = pairs_dir_lib.read_pairs(pairs_dir, pairs_dir_lib.worker_pair_files(pairs_dir, i, WORKERS))["user_id"]
        assert pairs == mine.size and users == np.unique(mine).size
        assert set(user_shards[mine]) == set(data_shards)
