"""One training run, start to finish: what sllmr-train does.

data_dir (+ pairs_dir) -> TrainingModel(backbone, method) -> fit with
BackupAndRestore (a killed run resumes at its last finished epoch), early
stopping on validation AUC that survives restarts, TensorBoard -> the best
epoch's backbone saved alone -> valid and test metrics with intervals ->
metrics.json. Rerunning a finished run returns its metrics without training;
rerunning with other settings or another dataset in the same model_dir is
refused. The dataset's shards, and the pairs dir's completeness and lineage,
are checked before anything is written into model_dir, so a refused run
leaves it as it was.

Under `--strategy` (training/distribution.py) the model lives in the strategy's
scope, each worker trains on its own data shards and holds the pairs of those
shards only, and only the chief writes model_dir: the other workers take part
in every save (Keras's saves of distributed variables are collective) into a
temporary dir they remove, and skip the final evaluation. Every worker
evaluates the whole validation split each epoch, so every worker sees the same
validation AUC and takes the same early-stopping decision.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import tensorflow as tf

from sllmr_tf import features, fileio, shards
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.knowledge_fields import set_item_knowledge
from sllmr_tf.training import artifacts, callbacks as callbacks_lib, distribution, methods as methods_lib
from sllmr_tf.training.config import FULL_RANKING_SUFFIX, TrainConfig
from sllmr_tf.training.full_ranking import evaluate_full_ranking
from sllmr_tf.training.gate import ReliabilityGate, fit_gate
from sllmr_tf.training.gate_report import gate_report
from sllmr_tf.training.inputs import EpochCounter, interaction_batches, training_batches
from sllmr_tf.training.knowledge import item_knowledge
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import PairsTable, load_pairs_table, select_pairs
from sllmr_tf.training.prediction import evaluate_split
from sllmr_tf.training.report import metrics_summary
from sllmr_tf.training.student_reference import StudentReference

Log = Callable[[str], None]
GATE_SAMPLE_BATCHES = 8
# Keras runs this many training steps per call of its compiled function: the same updates in the
# same order (the same metrics to the last digit), with less Python per step, which dominates at
# the protocol's batch of 128 (BUILD_NOTES.md, "The main job").
STEPS_PER_EXECUTION = 32


def train(config: TrainConfig, overwrite: bool = False, verbose: int = 2, log: Log = print,
          extra_callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> dict:
    """Train a run, resume a killed one, or return a finished one's metrics.

    Args:
        config: the run's settings (validated here); its model_dir holds the run.
        overwrite: delete a run with other settings (or a finished one) in model_dir first.
        verbose: Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch).
        log: where progress lines go.
        extra_callbacks: more Keras callbacks for fit (tests use them to inspect the model).

    Returns:
        The content of model_dir/metrics.json.

    Raises:
        UserError: bad settings, a dataset or pairs dir that is not usable, or a model_dir
            holding another run.
    """
    method = config.validate()
    place = distribution.placement(config.strategy)  # before any other TensorFlow op
    write_dir = place.write_dir(config.model_dir)
    data = DatasetDir(config.data_dir)
    data.check_shards()
    if method.uses_pairs:
        data.check_lineage(pairs_dir_lib.scored_dataset(config.pairs_dir), config.pairs_dir)
    if not place.is_chief and overwrite:
        fileio.rmtree(write_dir)
    if (_claim_model_dir(config, data, overwrite, log) if place.is_chief else
            "finished" if fileio.exists(artifacts.path(config.model_dir, artifacts.METRICS)) else "resume") == "finished":
        return fileio.read_json(artifacts.path(config.model_dir, artifacts.METRICS))
    table = select_pairs(load_pairs_table(config.pairs_dir, data, method.keep_augmented, place.worker_index,
                                          place.num_workers), config.pair_selection,
                         config.pairs_top_k) if method.uses_pairs else None
    if config.pairs_dir and not method.uses_pairs:
        log(f"method {config.method!r} ignores --pairs_dir")

    gate, gate_fit = fit_gate(table.rows()) if method.has_gate else (None, None)
    if gate is not None:
        place.chief_values(gate.weights)  # one gate for all workers: the one fitted on the chief's pairs
    tf.keras.utils.set_random_seed(config.seed)
    vocab_sizes = features.vocab_sizes(data.stats)

    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # the epoch the training input reads
    train_steps = place.steps(data.stats["splits"]["train"]["examples"], config.batch_size)

    def worker_train_batches(worker_index: int, num_workers: int) -> tf.data.Dataset:
        return training_batches(config.data_dir, config.batch_size * place.replicas_per_worker, config.seed,
                                table, config.pairs_per_example, config.shuffle_buffer, epoch=epoch,
                                steps=train_steps, worker_index=worker_index, num_workers=num_workers)

    def worker_valid_batches(_: int, num_workers: int) -> tf.data.Dataset:
        # Every worker evaluates the whole split: the same validation AUC everywhere.
        batches = interaction_batches(config.data_dir, "valid", config.eval_batch_size * place.replicas_per_worker)
        return batches.repeat() if num_workers > 1 else batches

    train_batches = worker_train_batches(place.worker_index, place.num_workers)
    steps = {"steps_per_epoch": train_steps,
             # each worker's replica covers the whole split once
             "validation_steps": place.steps(data.stats["splits"]["valid"]["examples"] * place.num_workers,
                                             config.eval_batch_size)}
    with place.strategy.scope():
        model = training_model(config, method, vocab_sizes, gate)
        model.compile(optimizer=tf.keras.optimizers.Adam(config.learning_rate), steps_per_execution=STEPS_PER_EXECUTION)
        # The logs are this worker's metrics (Keras's default sums the replicas' values): each
        # worker's validation AUC is over the whole split, the same on every worker.
        model.distribute_reduction_method = "first"
        first_batch = next(iter(train_batches))
        model.loss_terms(*first_batch, training=False)  # builds backbone and gate before any restore
    backbone = model.backbone
    # Every variable exists now; marked built, BackupAndRestore also builds the optimizer before
    # restoring, so Adam's slots come back with the weights on resume.
    model.built = True

    stopping = callbacks_lib.EarlyStoppingOnAuc(config.model_dir, config.patience, log=log, write_dir=write_dir)
    stopping.on_train_begin()
    log(_describe(config, data, table, place))
    started = time.time()
    if stopping.state.get("finished"):
        model.load_weights(artifacts.path(write_dir, artifacts.BEST_WEIGHTS)).expect_partial()
    else:
        model.fit(place.distribute(worker_train_batches), validation_data=place.distribute(worker_valid_batches),
                  epochs=config.epochs, verbose=verbose, **steps,
                  callbacks=[stopping, *_standard_callbacks(config, model, train_batches, epoch, steps["steps_per_epoch"],
                                                            log, place.is_chief),
                             *extra_callbacks])
        stopping.state["finished"] = True
        fileio.write_json(artifacts.path(write_dir, artifacts.EARLY_STOPPING), stopping.state)

    artifacts.save_backbone(write_dir, config.backbone, config.backbone_config(), vocab_sizes, backbone)
    log(f"backbone weights digest {distribution.weights_digest(backbone)}")
    if not place.is_chief:
        place.remove_write_dir(config.model_dir)
        return {"training": {"epochs_run": stopping.state["epochs_run"], "best_epoch": stopping.state["best_epoch"],
                             "best_val_auc": stopping.state["best"]}}
    metrics = {
        "backbone": config.backbone, "method": config.method, "seed": config.seed,
        "data_dir": fileio.absolute(config.data_dir),
        "pairs_dir": fileio.absolute(config.pairs_dir) if method.uses_pairs else None,
        "training": {"epochs_run": stopping.state["epochs_run"], "best_epoch": stopping.state["best_epoch"],
                     "best_val_auc": stopping.state["best"], "num_pairs": len(table) if table else 0,
                     "seconds_this_session": round(time.time() - started, 1)},
    }
    for split in ("valid", "test"):
        metrics[split] = evaluate_split(backbone, config.data_dir, split, config.eval_batch_size,
                                        config.num_bootstrap, config.seed)
    if config.full_ranking_eval:
        metrics["test" + FULL_RANKING_SUFFIX] = evaluate_full_ranking(backbone, config.data_dir, "test",
                                                                      config.num_bootstrap, config.seed)
    if method.has_alpha:
        metrics["gate"] = gate_report(model, table, gate_fit)
    fileio.write_json(artifacts.path(config.model_dir, artifacts.METRICS), metrics)
    log(metrics_summary(metrics))
    return metrics


def training_model(config: TrainConfig, method: methods_lib.Method, vocab_sizes: dict[str, int],
                   gate: ReliabilityGate | None = None) -> TrainingModel:
    """A new backbone of the run's settings inside the one training step.

    Args:
        config: the run's settings (backbone, its sizes, lambda, the pair loss and its settings).
        method: config.validate()'s method.
        vocab_sizes: the dataset's table sizes (features.vocab_sizes).
        gate: the fitted gate, for the gate's methods.

    Returns:
        The TrainingModel, not compiled; kar's backbone holds the items' knowledge vectors.
    """
    backbone = build_backbone(config.backbone, vocab_sizes, config.backbone_config())
    if method.knowledge:
        set_item_knowledge(backbone, item_knowledge(DatasetDir(config.data_dir), config.knowledge_dir))
    return TrainingModel(backbone, method, llm_loss_weight=config.llm_loss_weight,
                         confidence_weighting=config.confidence_weighting, gate=gate,
                         pair_loss=config.pair_loss, pair_margin=config.pair_margin,
                         paper_uncertainty=config.paper_uncertainty)


def _standard_callbacks(config: TrainConfig, model: TrainingModel, train_batches: tf.data.Dataset,
                        epoch: tf.Variable, steps: int, log: Log, is_chief: bool = True) -> list:
    """The gate's student reference (sllmr) and BackupAndRestore on every worker (under a
    multi-worker strategy Keras restores all of them from the chief's backup and the others write
    theirs to a temporary dir it removes); the summaries on the chief only."""
    logs = artifacts.path(config.model_dir, artifacts.LOGS_DIR)
    # Before the backup: an epoch's backup holds the reference the next epoch weighs pairs by.
    out = [StudentReference(model.gate, model.backbone, config.data_dir, config.eval_batch_size)
           ] if model.gate is not None and config.gate_reference == "student" else []
    out += [
        # Backed up at each epoch's end: the input resumes at an epoch's start (inputs.py), so a
        # mid-epoch backup could not resume its input where it was.
        tf.keras.callbacks.BackupAndRestore(artifacts.path(config.model_dir, artifacts.BACKUP_DIR)),
        EpochCounter(epoch, steps),  # after the restore
        callbacks_lib.ResumeNotice(log),
    ]
    if not is_chief:
        return out
    out.append(tf.keras.callbacks.TensorBoard(logs, write_graph=False, profile_batch=0))
    if model.method.varies_weight:
        out.append(callbacks_lib.GateHistograms(logs, list(train_batches.take(GATE_SAMPLE_BATCHES))))
    return out


def _claim_model_dir(config: TrainConfig, data: DatasetDir, overwrite: bool, log: Log) -> str:
    """'new', 'resume' or 'finished'; refuses a model_dir holding another run or trained on
    another dataset. train_config.json holds the settings and the dataset's fingerprint."""
    config_path = artifacts.path(config.model_dir, artifacts.TRAIN_CONFIG)
    saved = fileio.read_json(config_path)
    if overwrite and saved is not None:
        fileio.rmtree(config.model_dir)
        saved = None
    if saved is None:
        if fileio.isdir(config.model_dir) and fileio.listdir(config.model_dir):
            raise ArtifactError(f"{config.model_dir}: not empty and not a training run; "
                                "use another --model_dir")
        fileio.write_json(config_path, {**config.to_json(), artifacts.DATASET_FINGERPRINT: data.fingerprint})
        return "new"
    data.check_lineage(saved.get(artifacts.DATASET_FINGERPRINT), config.model_dir)
    # Where the run lives is not a setting: a run moved or linked elsewhere is the same run.
    differing = sorted(k for k, v in config.to_json().items() if k != "model_dir" and saved.get(k) != v)
    if differing:
        raise ArtifactError(f"{config.model_dir} holds a run with other settings ({', '.join(differing)}); "
                         "use another --model_dir or --overwrite")
    if fileio.exists(artifacts.path(config.model_dir, artifacts.METRICS)):
        log(f"{config.model_dir}: already trained (metrics.json exists); pass --overwrite to retrain")
        return "finished"
    return "resume"


def _describe(config: TrainConfig, data: DatasetDir, table: PairsTable | None,
              place: distribution.Placement) -> str:
    split = data.stats["splits"]["train"]
    pairs = f"{len(table):,} LLM pairs for {int((table.counts > 0).sum()):,} users" if table else "no LLM pairs"
    where = ""
    if place.name != "default":
        mine = shards.worker_shards(data.num_shards, place.worker_index, place.num_workers)
        where = (f"worker {place.worker_index} of {place.num_workers} ({config.strategy}, "
                 f"{place.strategy.num_replicas_in_sync} replicas, global batch "
                 f"{config.batch_size * place.strategy.num_replicas_in_sync}), data shards {mine}: ")
    return (f"{where}training {config.backbone} / {config.method} on {split['examples']:,} train examples, "
            f"{pairs}; model_dir {config.model_dir}")
