"""sllmr-experiment end to end: backbones x methods x seeds, a results table, reusable base runs."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sllmr_tf import segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.pairs_table import load_pairs_table, select_pairs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def experiment(world, work_dir: str, *extra: str) -> subprocess.CompletedProcess:
    data_dir, pairs_dir = world
    command = [sys.executable, "-m", "sllmr_tf.bins.experiment", f"--data_dir={data_dir}",
               f"--pairs_dir={pairs_dir}", f"--work_dir={work_dir}", "--backbones=dnn", "--seeds=2",
               "--epochs=1", *extra]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_experiment_trains_every_run_and_tabulates_gains_over_base_paired_by_seed(world, tmp_path):
    work_dir = str(tmp_path / "exp")
    done = experiment(world, work_dir, "--methods=base,sllmr")
    assert done.returncode == 0, done.stderr[-2000:]
    for method in ("base", "sllmr"):
        for seed in (0, 1):
            assert os.path.exists(os.path.join(work_dir, "runs", "dnn", method, f"seed{seed}", "metrics.json"))
    rows = list(csv.DictReader(open(os.path.join(work_dir, "results.csv"))))
    assert {(r["method"], r["segment"]) for r in rows} >= {("base", "overall"), ("sllmr", "overall"),
                                                           ("sllmr", "cold_start_users")}
    assert all(r["seeds"] == "2" for r in rows)
    assert "| dnn | sllmr | overall | 2 |" in done.stdout
    runs = {(m, seed): metrics(work_dir, m, seed) for m in ("base", "sllmr") for seed in (0, 1)}
    assert_rows_are_the_runs_metrics(rows, runs)
    for seed in (0, 1):
        assert_calibration_bins_are_the_pairs(runs[("sllmr", seed)]["gate"], world)
    for name in ("results.png", "gate_calibration.png"):
        path = os.path.join(work_dir, name)
        assert open(path, "rb").read(8) == PNG
        assert path in done.stdout

    # Another lambda and pair rate: the base runs are the same runs, reused rather than refused.
    again = experiment(world, work_dir, "--methods=base", "--llm_loss_weight=1.0", "--pairs_per_example=1.0")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "| dnn | base | overall | 2 |" in again.stdout


def metrics(work_dir: str, method: str, seed: int) -> dict:
    return json.load(open(os.path.join(work_dir, "runs", "dnn", method, f"seed{seed}", "metrics.json")))


def assert_rows_are_the_runs_metrics(rows: list[dict], runs: dict) -> None:
    """Each results.csv row: the mean over seeds of the runs' test AUC, their n, and the gain over
    base as the mean of the per-seed differences."""
    for row in rows:
        auc = {seed: runs[(row["method"], seed)]["test"][row["segment"]] for seed in (0, 1)}
        assert float(row["auc_mean"]) == pytest.approx(np.mean([auc[s]["auc"] for s in (0, 1)]))
        assert int(row["n"]) == auc[0]["n"]
        if row["method"] == "sllmr":
            gains = [auc[s]["auc"] - runs[("base", s)]["test"][row["segment"]]["auc"] for s in (0, 1)]
            assert float(row["delta_vs_base"]) == pytest.approx(np.mean(gains))


def assert_calibration_bins_are_the_pairs(gate: dict, world) -> None:
    """The bins hold every pair the run trained on once, each bin's mean weight lies between its
    edges, and the known outcomes and the LLM's agreement with them add up to the pairs table's."""
    data_dir, pairs_dir = world
    config = TrainConfig(data_dir=data_dir, model_dir="unused", method="sllmr", pairs_dir=pairs_dir)
    table = select_pairs(load_pairs_table(pairs_dir, DatasetDir(data_dir), config.validate().keep_augmented),
                         config.pair_selection, config.pairs_top_k)
    outcome, truth = table.columns["outcome"], table.columns["true_correct_prob"]
    bins = gate["calibration"]
    print(f"\ncalibration bins: {bins}")
    assert 1 <= len(bins) <= 12
    assert sum(b["pairs"] for b in bins) == gate["pairs"] == len(table)
    for b in bins:
        assert b["weight_low"] <= b["weight_mean"] <= b["weight_high"]
        assert (b["weight_mean"] == 0) == (b["bin"] == 0)
    known = segments.outcome_known(outcome)
    assert sum(b["known"] for b in bins) == known.sum() == gate["agreement_auc"]["n"]
    agreeing = sum(b["agreement"] * b["known"] for b in bins if b["known"])
    assert agreeing == pytest.approx(segments.llm_agrees(outcome).sum(), abs=1)  # bins round to 4 decimals
    assert sum(b["true_correct_mean"] * b["pairs"] for b in bins) == pytest.approx(truth.sum(), rel=1e-3)
