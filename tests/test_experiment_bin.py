"""sllmr-experiment end to end: backbones x methods x seeds, a results table, reusable base runs."""
from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


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
    assert os.path.exists(os.path.join(work_dir, "results.png"))

    # Another lambda and pair rate: the base runs are the same runs, reused rather than refused.
    again = experiment(world, work_dir, "--methods=base", "--llm_loss_weight=1.0", "--pairs_per_example=1.0")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "| dnn | base | overall | 2 |" in again.stdout
