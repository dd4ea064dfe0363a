"""sllmr-train and sllmr-eval end to end: outputs, resume after a kill, one-line errors."""
from __future__ import annotations

import glob
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf.training import artifacts
from sllmr_tf.training.prediction import predict_split
from sllmr_tf.errors import ArtifactError
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def binary(name: str, *flags: str) -> list[str]:
    return [sys.executable, "-m", f"sllmr_tf.bins.{name}", *flags]


def run(name: str, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(binary(name, *flags), cwd=REPO, capture_output=True, text=True, timeout=600)


def train_flags(world, model_dir: str, *extra: str) -> list[str]:
    data_dir, pairs_dir = world
    return [f"--data_dir={data_dir}", f"--pairs_dir={pairs_dir}", f"--model_dir={model_dir}",
            "--backbone=dnn", "--method=sllmr", "--num_bootstrap=20", *extra]


def event_tags(log_dir: str) -> set[str]:
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_train_then_eval_write_metrics_tensorboard_logs_and_a_servable_backbone(world, tmp_path):
    data_dir, _ = world
    model_dir = str(tmp_path / "model")
    trained = run("train", *train_flags(world, model_dir, "--epochs=3", "--patience=3"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "Epoch 3/3" in trained.stdout and "cold_start_users" in trained.stdout

    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["training"]["epochs_run"] == 3 and metrics["training"]["num_pairs"] > 0
    test = metrics["test"]
    assert test["overall"]["auc"] > 0.6
    lo, hi = test["overall"]["auc_ci95"]
    assert lo < test["overall"]["auc"] < hi
    assert test["overall"]["n"] > 200 and not test["overall"]["too_small"]
    for segment in ("cold_start_users", "longtail_items", "longtail_events", "gauc"):
        assert segment in test
    gate = metrics["gate"]  # the trained gate over every pair once
    assert gate["pairs"] == metrics["training"]["num_pairs"]
    assert 0 < gate["alpha_mean"]["all"] < 1 and -1 <= gate["spearman_true_correct_prob"] <= 1
    assert gate["agreement_auc"]["n"] > 0 and 0 <= gate["agreement_auc"]["auc"] <= 1
    assert "gate: fitted on" in trained.stdout and gate["fit"]["known_pairs"] > 0

    logs = os.path.join(model_dir, "logs")
    assert {"epoch_bce", "epoch_llm_loss", "epoch_gate_auc", "epoch_alpha", "epoch_weight_cold_start",
            "epoch_weight_longtail", "epoch_weight_head", "epoch_llm_agreement"} <= event_tags(f"{logs}/train")
    assert {"epoch_auc", "epoch_auc_cold_start", "epoch_auc_longtail"} <= event_tags(f"{logs}/validation")
    assert {"alpha/all", "alpha/cold_start", "alpha_mean/cold_start", "weight/head", "weight_mean/longtail",
            "weight_spearman_true_correct_prob"} <= event_tags(f"{logs}/gate")

    backbone = artifacts.load_backbone(model_dir)  # what the export stage loads: the backbone alone
    assert backbone.name == "dnn" and "gate" not in {layer.name for layer in backbone.layers}
    probs = predict_split(backbone, data_dir, "test").probs
    assert probs.shape == (test["overall"]["n"],)

    evaluated = run("eval", f"--model_dir={model_dir}", f"--data_dir={data_dir}", "--split=test",
                    "--num_bootstrap=20")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "overall" in evaluated.stdout
    again = json.load(open(os.path.join(model_dir, "metrics.json")))["test"]
    assert again["overall"]["auc"] == pytest.approx(test["overall"]["auc"], abs=1e-9)


KILL_SEED = 11


def test_a_run_killed_mid_epoch_resumes_and_ends_with_the_uninterrupted_runs_metrics(world, tmp_path):
    """Killed (SIGKILL) in epoch 2 of 3 at a seeded moment, then rerun: the rerun resumes at epoch 2
    and its metrics equal those of the same run trained without a kill. Dropout off: Keras does
    not back up the dropout layers' random state (BUILD_NOTES.md)."""
    data_dir, pairs_dir = world
    extra = ("--epochs=3", "--patience=3", "--batch_size=64", "--dropout=0")
    uninterrupted = train(TrainConfig(data_dir=data_dir, pairs_dir=pairs_dir, model_dir=str(tmp_path / "whole"),
                                      method="sllmr", num_bootstrap=20, epochs=3, patience=3, batch_size=64,
                                      dropout=0.0), verbose=0, log=lambda _: None)
    model_dir = str(tmp_path / "model")
    flags = train_flags(world, model_dir, *extra)
    process = subprocess.Popen(binary("train", *flags), cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    state_path = os.path.join(model_dir, "early_stopping.json")
    deadline = time.time() + 300
    while not (os.path.exists(state_path) and json.load(open(state_path))["epochs_run"] == 1
               and glob.glob(os.path.join(model_dir, "backup", "**", "checkpoint"), recursive=True)):
        assert process.poll() is None and time.time() < deadline, "the run ended before epoch 2"
        time.sleep(0.01)
    time.sleep(random.Random(KILL_SEED).uniform(0.0, 0.1))  # into epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.load(open(state_path))["epochs_run"] == 1 and not os.path.exists(os.path.join(model_dir, "metrics.json"))

    resumed = run("train", *flags)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from the backup checkpoint at epoch 2" in resumed.stdout and "Epoch 1/3" not in resumed.stdout
    steps = math.ceil(json.load(open(os.path.join(data_dir, "stats.json")))["splits"]["train"]["examples"] / 64)
    assert f"Epoch 2/3\n{steps}/{steps} " in resumed.stdout  # the real steps per epoch, not the steps so far
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["training"]["best_val_auc"] == uninterrupted["training"]["best_val_auc"]
    for split in ("valid", "test"):
        assert metrics[split]["overall"] == uninterrupted[split]["overall"]
    state = json.load(open(state_path))
    assert state["epochs_run"] == 3 and state["finished"] and len(state["history"]) == 3


def test_bad_flags_and_inputs_end_with_a_one_line_error(world, tmp_path):
    data_dir, _ = world
    no_pairs = run("train", f"--data_dir={data_dir}", f"--model_dir={tmp_path / 'm'}", "--method=sllmr")
    assert no_pairs.returncode == 2
    assert no_pairs.stderr.strip().splitlines()[-1].endswith(
        ": error: method 'sllmr' needs --pairs_dir (LLM pairs from sllmr-score)")
    untrained = run("eval", f"--model_dir={tmp_path / 'nothing'}", f"--data_dir={data_dir}")
    assert untrained.returncode == 2
    assert "error: " in untrained.stderr.strip().splitlines()[-1]
    assert "no trained backbone" in untrained.stderr.strip().splitlines()[-1]


def test_a_model_dir_is_never_reused_for_other_settings(world, tmp_path):
    data_dir, pairs_dir = world
    config = TrainConfig(data_dir=data_dir, model_dir=str(tmp_path / "m"), method="base", epochs=1,
                         num_bootstrap=10)
    train(config, verbose=0, log=lambda _: None)
    with pytest.raises(ArtifactError, match=r"holds a run with other settings \(method, pairs_dir\)"):
        train(TrainConfig(**{**config.__dict__, "method": "kd", "pairs_dir": pairs_dir}), verbose=0,
              log=lambda _: None)
    with pytest.raises(ArtifactError, match="not a prepared dataset"):
        train(TrainConfig(data_dir=str(tmp_path), model_dir=str(tmp_path / "m2")), verbose=0)
    metrics = train(TrainConfig(**{**config.__dict__, "method": "kd", "pairs_dir": pairs_dir}), overwrite=True,
                    verbose=0, log=lambda _: None)
    assert metrics["method"] == "kd" and np.isfinite(metrics["test"]["overall"]["auc"])


def test_a_run_moved_to_another_directory_is_the_same_finished_run(world, tmp_path):
    data_dir, _ = world
    config = TrainConfig(data_dir=data_dir, model_dir=str(tmp_path / "m"), method="base", epochs=1,
                         num_bootstrap=10)
    first = train(config, verbose=0, log=lambda _: None)
    os.rename(config.model_dir, tmp_path / "moved")
    lines = []
    again = train(TrainConfig(**{**config.__dict__, "model_dir": str(tmp_path / "moved")}), verbose=0,
                  log=lines.append)
    assert any("already trained" in line for line in lines)
    assert again["test"]["overall"]["auc"] == first["test"]["overall"]["auc"]
