"""The main job: does S-LLMR help on this data? prepare -> score -> LLM reliability -> train and
evaluate every method -> export -> the closing comparison.

Each stage is the project's own binary, run as a child process with the stage's flagfile, so
the main job does exactly what a user typing the pipeline's commands would, and each binary's
own rerun rule decides what a rerun does: prepare and score do nothing for a dataset or pairs
already made with the same settings (and say so), the experiment reuses finished runs, and an
export is not repeated when a version of the same run exists. Everything lives under
`work_dir`:

    work_dir/data/          the prepared dataset            (sllmr-prepare)
    work_dir/pairs/         the LLM pairs and reliability.* (sllmr-score)
    work_dir/experiment/    runs/<backbone>/<method>/seed<k>/ and results.*  (sllmr-experiment)
    work_dir/export/<v>/    the served run's SavedModel (sllmr-export; export_choice says which)
    work_dir/comparison.md  the closing table and verdicts
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from typing import Callable, Sequence

from sllmr_tf import fileio
from sllmr_tf.errors import ArtifactError, ConfigError
from sllmr_tf.experiments import comparison
from sllmr_tf.experiments.config import MainJobConfig
from sllmr_tf.experiments.results import BASELINE, VALID, beats_base_on_validation
from sllmr_tf.training import artifacts

Log = Callable[[str], None]


class StageFailed(ArtifactError):
    """A stage's binary refused its input (exit 2); its own one-line reason is printed above."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each stage of one main job writes."""

    work_dir: str

    @property
    def data_dir(self) -> str:
        return fileio.join(self.work_dir, "data")

    @property
    def pairs_dir(self) -> str:
        return fileio.join(self.work_dir, "pairs")

    @property
    def experiment_dir(self) -> str:
        return fileio.join(self.work_dir, "experiment")

    @property
    def runs_dir(self) -> str:
        return fileio.join(self.experiment_dir, "runs")

    @property
    def export_base(self) -> str:
        return fileio.join(self.work_dir, "export")

    @property
    def comparison(self) -> str:
        return fileio.join(self.work_dir, "comparison.md")

    def run_dir(self, backbone: str, method: str, seed: int) -> str:
        return fileio.join(self.runs_dir, backbone, method, f"seed{seed}")


@dataclasses.dataclass(frozen=True)
class ExportChoice:
    """The run the main job serves, and why that one."""

    model_dir: str
    method: str
    reason: str


def export_choice(where: Layout, config: MainJobConfig) -> ExportChoice:
    """The seed-0 run of the first backbone to serve: the export method's run where it beats base's
    on validation (`results.beats_base_on_validation`, what METHOD_checked ships), else base's.

    Shipping the method only on the validation split's word is what keeps the served model from
    being worse than the backbone alone when the teacher misleads it (BUILD_NOTES.md, "Checked on
    validation"); the test split plays no part in the choice.
    """
    backbone, method = config.backbones[0], config.export_method
    base_dir = where.run_dir(backbone, BASELINE, 0)
    if method == BASELINE:
        return ExportChoice(base_dir, BASELINE, "base was asked for")
    method_dir = where.run_dir(backbone, method, 0)
    (_, metrics), (_, base_metrics) = artifacts.finished_run(method_dir), artifacts.finished_run(base_dir)
    figures = f"{metrics[VALID]['overall']['auc']:.4f} against base's {base_metrics[VALID]['overall']['auc']:.4f}"
    if beats_base_on_validation(metrics, base_metrics):
        return ExportChoice(method_dir, method, f"{method} beats base on validation: AUC {figures}")
    return ExportChoice(base_dir, BASELINE, f"{method} does not beat base on validation: AUC {figures}")


def run_stage(binary: str, arguments: Sequence[str]) -> None:
    """Run `python -m sllmr_tf.bins.<binary> ARGUMENTS` with this interpreter; its output passes through.

    Raises:
        StageFailed: the binary exited 2 (a user error it has reported in one line).
        subprocess.CalledProcessError: any other failure (a bug: its traceback is printed above).
    """
    sys.stdout.flush()
    # Unbuffered: the child's progress lines appear as they are printed, also into a log file.
    done = subprocess.run([sys.executable, "-m", f"sllmr_tf.bins.{binary}", *arguments],
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if done.returncode == 2:
        raise StageFailed(f"sllmr-{binary} stopped on the error above; fix it and rerun (finished stages are kept)")
    done.check_returncode()


def _flagfile(path: str) -> str:
    if not fileio.exists(path):
        raise ConfigError(f"flagfile {path} not found (run the main job from the repository root, "
                          "or pass the stage flagfiles' paths)")
    return f"--flagfile={path}"


def run_main_job(config: MainJobConfig, log: Log = print) -> list[comparison.MethodRow]:
    """Run every stage of the main job (each reused when already done) and print the comparison.

    Args:
        config: the stages' flagfiles, the methods and backbones to compare, where to work.
        log: where the stage headers and the closing table go.

    Returns:
        The closing table's rows.

    Raises:
        UserError: a bad setting, or a stage that refused its input.
    """
    config.validate()
    where = Layout(config.work_dir)
    flagfiles = {name: _flagfile(path) for name, path in
                 (("prepare", config.prepare_flagfile), ("score", config.score_flagfile),
                  ("train", config.train_flagfile))}
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"prepare {config.prepare_flagfile} -> {where.data_dir}",
         lambda: run_stage("prepare", [flagfiles["prepare"], f"--data_dir={where.data_dir}"])),
        (f"score with {config.score_flagfile} -> {where.pairs_dir} (with the LLM reliability report)",
         lambda: run_stage("score", [flagfiles["score"], f"--data_dir={where.data_dir}", f"--pairs_dir={where.pairs_dir}"])),
        (f"train and evaluate {', '.join(config.methods)} on {', '.join(config.backbones)}, {config.seeds} seed(s) "
         f"-> {where.experiment_dir}",
         lambda: run_stage("experiment", [flagfiles["train"], f"--data_dir={where.data_dir}",
                                      f"--pairs_dir={where.pairs_dir}", f"--work_dir={where.experiment_dir}",
                                      f"--backbones={','.join(config.backbones)}",
                                      f"--methods={','.join(config.methods)}", f"--seeds={config.seeds}"])),
        (f"export {config.backbones[0]} / seed 0: {config.export_method} if it beats base on validation, "
         f"else base -> {where.export_base}",
         lambda: _export(export_choice(where, config), where.export_base, log)),
    ]
    started = time.time()
    for k, (title, step) in enumerate(steps, start=1):
        log(f"\n== [{k}/{len(steps) + 1}] {title}")
        began = time.time()
        step()
        log(f"== [{k}/{len(steps) + 1}] done in {time.time() - began:.0f} s")
    log(f"\n== [{len(steps) + 1}/{len(steps) + 1}] comparison")
    rows = comparison.compare(where.runs_dir, checked=True)
    text = closing_text(rows, where, config)
    fileio.write_atomic(where.comparison, text + "\n")
    log(text)
    log(f"\n(main job {time.time() - started:.0f} s; this text is in {where.comparison})")
    return rows


def _export(choice: ExportChoice, export_base: str, log: Log) -> None:
    """Export the chosen run unless a version of it is there already."""
    from sllmr_tf.export import identity

    log(f"{choice.reason}: serving {choice.method}")
    version = identity.exported_version(export_base, choice.model_dir)
    if version is not None:
        log(f"{export_base}/{version} already serves this run: nothing to do")
        return
    run_stage("export", [f"--model_dir={choice.model_dir}", f"--export_base={export_base}"])


def closing_text(rows: list[comparison.MethodRow], where: Layout, config: MainJobConfig) -> str:
    """The comparison tables, one plain verdict per method, and where to look next."""
    from sllmr_tf.export import identity

    verdicts = [comparison.verdict(r) for r in rows if r.delta]
    choice = export_choice(where, config)
    version = identity.exported_version(where.export_base, choice.model_dir)
    lines = [comparison.to_text(rows), "", comparison.segment_definitions(), comparison.CHECKED_DEFINITION, "",
             "Verdict:",
             *[f"- {line}" for line in verdicts], "",
             f"LLM reliability report:  {fileio.join(where.pairs_dir, 'reliability.md')}",
             f"results and plots:       {where.experiment_dir}/results.md, results.png",
             f"TensorBoard logs:        tensorboard --logdir={where.runs_dir}",
             f"SavedModel for serving:  {fileio.join(where.export_base, str(version))} "
             f"({config.backbones[0]} / {choice.method} / seed 0: {choice.reason}; "
             f"tensorflow_model_server --model_base_path={fileio.absolute(where.export_base)})"]
    return "\n".join(lines)
