"""Where a training run runs: its tf.distribute strategy and this process's place in it.

`multi_worker` is MultiWorkerMirroredStrategy over the cluster in $TF_CONFIG
(synchronous data parallelism; the AUTO collective is RING on CPU, NCCL on
GPU). Worker k of W reads the data shards s with s % W == k and the pair files
of the same shards (shards.worker_shards), so it holds only its users' pairs.
The chief (the `chief` task, else worker 0) writes the run into model_dir; every
other worker writes what it must (Keras's saves are collective: all workers
take part) into its own temporary dir beside it, removed at the end.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import socket
from typing import Callable

import numpy as np
import tensorflow as tf

from sllmr_tf import fileio
from sllmr_tf.errors import ConfigError

TF_CONFIG = "TF_CONFIG"


def local_cluster(num_workers: int) -> list[str]:
    """Addresses of `num_workers` workers on free ports of 127.0.0.1 (tests and benchmarks)."""
    sockets = [socket.socket() for _ in range(num_workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return addresses


def tf_config(workers: list[str], index: int) -> str:
    """The $TF_CONFIG of worker `index` of the cluster `workers` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


@dataclasses.dataclass(frozen=True)
class Placement:
    """The strategy, and which of the run's workers this process is."""

    name: str  # TrainConfig.strategy
    strategy: tf.distribute.Strategy
    worker_index: int  # the chief is 0
    num_workers: int

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    def write_dir(self, model_dir: str) -> str:
        """Where this worker writes: model_dir for the chief, `<model_dir>.worker-<k>` for worker k."""
        return model_dir if self.is_chief else f"{model_dir.rstrip('/')}.worker-{self.worker_index}"

    def remove_write_dir(self, model_dir: str) -> None:
        """A worker's temporary dir, once the run is done (never the chief's model_dir)."""
        if not self.is_chief:
            fileio.rmtree(self.write_dir(model_dir))

    @property
    def replicas_per_worker(self) -> int:
        return self.strategy.num_replicas_in_sync // self.num_workers

    def steps(self, examples: int, batch_size: int) -> int:
        """The steps of an epoch: `examples` once over all replicas at `batch_size` per replica
        (with several workers every worker takes this many, on repeated input)."""
        return math.ceil(examples / (batch_size * self.strategy.num_replicas_in_sync))

    def distribute(self, make: Callable[[int, int], tf.data.Dataset]):
        """The input of fit. `make(worker_index, num_workers)` is this worker's dataset; its batches
        are the worker's share of a step (replicas_per_worker x the per-replica batch), which
        Keras splits over the worker's replicas. With several workers a distributed dataset
        (Keras never restarts one: repeat it and give the steps)."""
        if self.num_workers == 1:
            return make(0, 1)

        def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
            if (context.input_pipeline_id, context.num_input_pipelines) != (self.worker_index, self.num_workers):
                raise RuntimeError(f"input pipeline {context.input_pipeline_id} of {context.num_input_pipelines} "
                                   f"is not worker {self.worker_index} of {self.num_workers}")
            return make(context.input_pipeline_id, context.num_input_pipelines)

        return self.strategy.distribute_datasets_from_function(per_worker)

    def chief_values(self, variables: list[tf.Variable]) -> None:
        """Give every worker the chief's values of `variables` (a sum all-reduce in which only
        replica 0, the chief's first, contributes)."""
        if self.num_workers == 1:
            return

        def replica_fn():
            context = tf.distribute.get_replica_context()
            mine = tf.cast(tf.equal(context.replica_id_in_sync_group, 0), tf.float32)
            return [context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(v, tf.float32) * mine) for v in variables]

        shared = self.strategy.run(replica_fn)
        for variable, value in zip(variables, shared):
            variable.assign(tf.cast(self.strategy.experimental_local_results(value)[0], variable.dtype))


def placement(name: str) -> Placement:
    """The strategy `name` (TrainConfig.strategy); create it before any other TensorFlow op.

    Raises:
        ConfigError: multi_worker without a cluster in $TF_CONFIG, or a task that is not a
            chief or a worker.
    """
    if name == "default":
        return Placement(name, tf.distribute.get_strategy(), 0, 1)
    if name == "mirrored":
        return Placement(name, tf.distribute.MirroredStrategy(), 0, 1)
    cluster = json.loads(os.environ.get(TF_CONFIG) or "{}")
    spec, task = cluster.get("cluster") or {}, cluster.get("task") or {}
    if not spec.get("worker") and not spec.get("chief"):
        raise ConfigError(f"--strategy=multi_worker needs ${TF_CONFIG} with a cluster of workers "
                          '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                          '"task": {"type": "worker", "index": 0}})')
    if task.get("type") not in ("chief", "worker"):
        raise ConfigError(f"${TF_CONFIG} task type {task.get('type')!r}: sllmr-train runs as 'chief' or 'worker'")
    chiefs = len(spec.get("chief", []))
    index = int(task.get("index", 0)) + (0 if task["type"] == "chief" else chiefs)
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    out = Placement(name, strategy, index, chiefs + len(spec.get("worker", [])))
    if out.replicas_per_worker != 1:
        # An epoch's validation must be one whole pass on every worker; with r replicas a worker
        # takes r batches a step, which a pass of any length does not divide.
        raise ConfigError(f"--strategy=multi_worker with {out.replicas_per_worker} devices per worker: "
                          "run one worker per device (CUDA_VISIBLE_DEVICES)")
    return out


def weights_digest(model: tf.keras.Model) -> str:
    """A short fingerprint of a model's weights (their bytes, in order): equal on every worker
    of a synchronous run."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()[:16]

