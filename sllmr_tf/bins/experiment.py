"""sllmr-experiment: train backbones x methods x seeds on one dataset and tabulate the results.

    sllmr-experiment --data_dir=DIR --pairs_dir=DIR --backbones=deepfm,din --methods=base,kd,sllmr \\
                     --seeds=3 --work_dir=OUT

Takes every sllmr-train flag except those it sets per run (model_dir, backbone,
method, seed). Each run lives in OUT/runs/<backbone>/<method>/seed<k> and is
resumable (a finished run is not retrained), so a killed experiment continues
where it stopped. A base run carries no pair settings, so one set of base runs
serves a whole sweep. Results go to OUT/results.{md,csv,png}; runs trained with
--full_ranking_eval also give OUT/results_full_ranking.{md,csv,png}. Each results.md
ends with the overall AUC in the paper's Table 2 layout (a row per backbone, a column
per method); results.png draws each segment's AUC and each method's paired gain over base,
both with 95% intervals. With --validation_check (default) each method also appears checked
on validation, as METHOD_checked: per seed its run where its validation AUC beats base's,
else base's run, which is what shipping it only on the validation split's word gives. When
gated runs are among them (sllmr, sllmr_paper), OUT/gate_calibration.png sets the weight the
gate gives per weight bin against the signal those pairs carry. The paths written are printed.
"""
from __future__ import annotations

from typing import Sequence

from sllmr_tf.bins import common, config_flags
from sllmr_tf.experiments.config import PER_RUN, ExperimentConfig
from sllmr_tf.training.config import TrainConfig

config_flags.define(ExperimentConfig)
config_flags.define(TrainConfig, exclude=PER_RUN)


def main(argv: Sequence[str]) -> None:
    experiment = config_flags.build(ExperimentConfig)
    experiment.validate()
    from sllmr_tf import fileio
    from sllmr_tf.experiments import results
    from sllmr_tf.training import artifacts, callbacks, methods
    from sllmr_tf.training.trainer import train

    runs = [(b, m, s) for b in experiment.backbones for m in experiment.methods for s in range(experiment.seeds)]
    for k, (backbone, method, seed) in enumerate(runs, start=1):
        config = config_flags.build(
            TrainConfig, backbone=backbone, method=method, seed=seed,
            model_dir=fileio.join(experiment.work_dir, "runs", backbone, method, f"seed{seed}"))
        if not methods.get_method(method).uses_pairs:
            config = config.without_pair_settings()
        finished = fileio.exists(artifacts.path(config.model_dir, artifacts.METRICS))
        print(f"[{k}/{len(runs)}] {backbone} / {method} / seed {seed}"
              + (": trained earlier, reusing its metrics.json" if finished else ""), flush=True)
        metrics = train(config, verbose=0, log=lambda line: None,
                        extra_callbacks=[] if finished else [callbacks.EpochProgress(print)])
        if not finished:
            print(f"    {run_line(metrics)}", flush=True)
    for split in results.result_splits(fileio.join(experiment.work_dir, "runs")):
        summary = results.summarize(results.collect(fileio.join(experiment.work_dir, "runs"), split,
                                                    checked=experiment.validation_check))
        paths = results.write(summary, experiment.work_dir, split, order=experiment.methods)
        print(f"\n{split}\n\n{results.to_markdown(summary)}\n\n"
              f"{results.to_paper_table(summary, order=experiment.methods)}")
        print("wrote " + ", ".join(paths))
    calibration = results.write_calibration(fileio.join(experiment.work_dir, "runs"), experiment.work_dir,
                                            order=experiment.methods)
    if calibration:
        print("wrote " + calibration)


def run_line(metrics: dict) -> str:
    """A finished run in one line: its test AUC with the interval, and how training went."""
    test, training = metrics["test"]["overall"], metrics["training"]
    interval = f" [{test['auc_ci95'][0]:.4f}, {test['auc_ci95'][1]:.4f}]" if test["auc_ci95"] else ""
    return (f"test AUC {test['auc']:.4f}{interval}; best epoch {training['best_epoch']} of "
            f"{training['epochs_run']}; {training['seconds_this_session']:.0f} s")


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
