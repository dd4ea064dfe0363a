"""sllmr-main, the README's first command, end to end on a tiny world: every stage, the
experiment's tables and plots and the closing table from the runs' own metrics.json, the
export of the run validation prefers, a rerun that redoes nothing, and base runs shared by
another sweep."""
from __future__ import annotations

import csv
import dataclasses
import glob
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from sllmr_tf import segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.experiments import comparison
from sllmr_tf.experiments.config import MainJobConfig
from sllmr_tf.experiments.main_job import Layout, export_choice
from sllmr_tf.experiments.results import beats_base_on_validation
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.pairs_table import load_pairs_table, select_pairs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"

# The stages' flagfiles, made tiny: a small synthetic world, the simulated teacher, one epoch.
FLAGFILES = {
    "prepare": ["--flagfile=flags/prepare_synthetic.flags", "--synthetic_users=400", "--synthetic_items=200",
                "--num_shards=2"],
    "score": ["--flagfile=flags/score_synthetic_simulated.flags", "--num_orders=1", "--max_lists=200"],
    "train": ["--flagfile=flags/train_protocol.flags", "--epochs=1", "--num_bootstrap=20", "--batch_size=256"],
}


def main_job(work_dir: str, flagfiles: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sllmr_tf.bins.main", f"--work_dir={work_dir}", "--backbones=dnn",
               "--methods=base,sllmr", "--seeds=2", *(f"--{name}_flagfile={path}" for name, path in flagfiles.items())]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def flagfiles(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("flags")
    out = {}
    for name, lines in FLAGFILES.items():
        out[name] = str(root / f"{name}.flags")
        with open(out[name], "w") as f:
            f.write("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="module")
def job(flagfiles, tmp_path_factory):
    """The main job run twice on the same work_dir: (work_dir, first run, rerun, mtimes after the first)."""
    work_dir = str(tmp_path_factory.mktemp("main_job") / "work")
    first = main_job(work_dir, flagfiles)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    written = {path: os.stat(path).st_mtime_ns for path in glob.glob(f"{work_dir}/**/*", recursive=True)
               if os.path.isfile(path)}
    return work_dir, first, main_job(work_dir, flagfiles), written


@pytest.mark.slow
def test_every_stage_runs_in_order_and_writes_its_output(job):
    work_dir, first, _, _ = job
    headers = re.findall(r"== \[(\d)/5\] (\w+)", first.stdout)
    assert [name for _, name in headers if name != "done"] == ["prepare", "score", "train", "export", "comparison"]
    assert os.path.exists(f"{work_dir}/data/stats.json")
    assert glob.glob(f"{work_dir}/pairs/pairs-*")
    for method in ("base", "sllmr"):
        for seed in (0, 1):
            assert os.path.exists(f"{work_dir}/experiment/runs/dnn/{method}/seed{seed}/metrics.json")
    assert {"reliability.md", "reliability.csv", "reliability.png"} <= set(os.listdir(f"{work_dir}/pairs"))
    assert "| all | all pairs |" in first.stdout  # the reliability table, printed
    assert os.path.exists(f"{work_dir}/export/1/saved_model.pb")
    served = json.load(open(f"{work_dir}/export/1/assets.extra/sllmr_run.json"))
    shipped = "sllmr" if beats_base_on_validation(metrics(work_dir, "sllmr", 0), metrics(work_dir, "base", 0)) else "base"
    assert (served["backbone"], served["method"], served["seed"]) == ("dnn", shipped, 0)
    assert f"serving {shipped}" in first.stdout and f"(dnn / {shipped} / seed 0: " in first.stdout
    assert open(f"{work_dir}/comparison.md").read().strip() in first.stdout


@pytest.mark.slow
def test_the_experiments_tables_and_plots_are_the_runs_metrics(job):
    work_dir, first, _, _ = job
    experiment = f"{work_dir}/experiment"
    rows = list(csv.DictReader(open(f"{experiment}/results.csv")))
    assert {(r["method"], r["segment"]) for r in rows} >= {("base", "overall"), ("sllmr", "overall"),
                                                           ("sllmr", "cold_start_users"), ("sllmr_checked", "overall")}
    assert all(r["seeds"] == "2" for r in rows)
    assert "| dnn | sllmr | overall | 2 |" in first.stdout
    runs = {(m, seed): metrics(work_dir, m, seed) for m in ("base", "sllmr") for seed in (0, 1)}
    assert_rows_are_the_runs_metrics(rows, runs)
    for seed in (0, 1):
        assert_calibration_bins_are_the_pairs(runs[("sllmr", seed)]["gate"], (f"{work_dir}/data", f"{work_dir}/pairs"))
    for name in ("results.png", "gate_calibration.png"):
        assert open(f"{experiment}/{name}", "rb").read(8) == PNG
        assert f"{experiment}/{name}" in first.stdout


@pytest.mark.slow
def test_the_closing_table_is_the_runs_metrics(job):
    work_dir, _, _, _ = job
    runs = {(m, s): metrics(work_dir, m, s) for m in ("base", "sllmr") for s in (0, 1)}
    rows = {r.method: r for r in comparison.compare(f"{work_dir}/experiment/runs")}
    for method in ("base", "sllmr"):
        for segment in comparison.AUC_SEGMENTS:
            tests = [runs[(method, s)]["test"][segment] for s in (0, 1)]
            cell = rows[method].absolute[segment]
            assert (cell.value, cell.low, cell.high) == pytest.approx(
                (np.mean([t["auc"] for t in tests]), np.mean([t["auc_ci95"][0] for t in tests]),
                 np.mean([t["auc_ci95"][1] for t in tests])))
        for name, read in (("gauc", lambda m: m["test"]["gauc"]["value"]),
                           ("logloss", lambda m: m["test"]["overall"]["logloss"])):
            assert rows[method].absolute[name].value == pytest.approx(np.mean([read(runs[(method, s)]) for s in (0, 1)]))
    deltas = [runs[("sllmr", s)]["test"]["overall"]["auc"] - runs[("base", s)]["test"]["overall"]["auc"] for s in (0, 1)]
    half = scipy.stats.t.ppf(0.975, 1) * np.std(deltas, ddof=1) / math.sqrt(2)
    delta = rows["sllmr"].delta["overall"]
    assert (delta.value, delta.low, delta.high) == pytest.approx((np.mean(deltas), np.mean(deltas) - half,
                                                                  np.mean(deltas) + half))
    # The printed table shows exactly these figures, and a verdict on sllmr with its interval.
    closing = open(f"{work_dir}/comparison.md").read()
    base_line = next(line for line in closing.splitlines() if line.startswith("| dnn | base |"))
    assert rows["base"].absolute["overall"].text() in base_line
    assert f"- sllmr (dnn, 2 seeds) " in closing and f"overall AUC {delta.text(signed=True)}" in closing
    assert "- sllmr_checked (dnn, 2 seeds) " in closing and comparison.CHECKED_DEFINITION in closing


def _metrics(method: str, seed: int, auc: float) -> dict:
    segment = {"auc": auc, "auc_ci95": [auc - 0.01, auc + 0.01], "too_small": False, "logloss": 0.4, "n": 500}
    return {"backbone": "dnn", "method": method, "seed": seed,
            "test": {**{name: dict(segment) for name in comparison.AUC_SEGMENTS},
                     "gauc": {"value": auc, "ci95": [auc - 0.02, auc + 0.02], "n_users": 50}}}


@pytest.mark.parametrize("gains, said", [((0.010, 0.012, 0.011), "beat base here"),
                                         ((-0.010, -0.012, -0.011), "did worse than base here"),
                                         ((0.010, -0.012, 0.001), "did not beat base here")])
def test_the_verdict_follows_the_paired_interval_over_seeds(tmp_path, gains, said):
    base = (0.80, 0.78, 0.81)
    for seed, (auc, gain) in enumerate(zip(base, gains)):
        for method, value in (("base", auc), ("sllmr", auc + gain)):
            folder = tmp_path / method / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "metrics.json").write_text(json.dumps(_metrics(method, seed, value)))
    row = next(r for r in comparison.compare(str(tmp_path)) if r.method == "sllmr")
    half = scipy.stats.t.ppf(0.975, 2) * np.std(gains, ddof=1) / math.sqrt(3)
    delta = row.delta["overall"]
    assert (delta.value, delta.low, delta.high) == pytest.approx((np.mean(gains), np.mean(gains) - half,
                                                                  np.mean(gains) + half))
    assert row.absolute["overall"].value == pytest.approx(np.mean(np.add(base, gains)))
    assert f"sllmr (dnn, 3 seeds) {said}: overall AUC {delta.text(signed=True)}" in comparison.verdict(row)


def test_one_seed_gives_a_difference_but_no_interval_and_no_verdict(tmp_path):
    for method, value in (("base", 0.80), ("sllmr", 0.81)):
        folder = tmp_path / method / "seed0"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(_metrics(method, 0, value)))
    row = next(r for r in comparison.compare(str(tmp_path)) if r.method == "sllmr")
    assert row.delta["overall"].value == pytest.approx(0.01) and math.isnan(row.delta["overall"].low)
    assert "from one seed: no interval, so no verdict" in comparison.verdict(row)


@pytest.mark.slow
def test_a_rerun_reuses_every_stage_and_says_so(job):
    work_dir, _, rerun, written = job
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    out = rerun.stdout
    assert "already prepared" in out and "nothing to do" in out
    assert out.count("trained earlier, reusing its metrics.json") == 4
    assert "already serves this run" in out
    assert not os.path.exists(f"{work_dir}/export/2")
    changed = [path for path, mtime in written.items()
               if os.path.exists(path) and os.stat(path).st_mtime_ns != mtime and not path.endswith(
                   ("comparison.md", ".md", ".csv", ".png"))]
    assert changed == []  # only the tables and plots are written again


@pytest.mark.slow
def test_another_sweep_reuses_the_base_runs_whatever_its_pair_settings(job, flagfiles):
    work_dir = job[0]
    again = subprocess.run([sys.executable, "-m", "sllmr_tf.bins.experiment", f"--flagfile={flagfiles['train']}",
                            f"--data_dir={work_dir}/data", f"--pairs_dir={work_dir}/pairs",
                            f"--work_dir={work_dir}/experiment", "--backbones=dnn", "--seeds=2", "--methods=base",
                            "--llm_loss_weight=1.0", "--pairs_per_example=0.5"],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("trained earlier, reusing its metrics.json") == 2
    assert "| dnn | base | overall | 2 |" in again.stdout


def _finished_run(model_dir, method: str, valid_auc: float) -> None:
    os.makedirs(model_dir)
    with open(os.path.join(model_dir, "train_config.json"), "w") as f:
        json.dump({"backbone": "dnn", "method": method, "seed": 0}, f)
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump({"backbone": "dnn", "method": method, "seed": 0, "valid": {"overall": {"auc": valid_auc}}}, f)


@pytest.mark.parametrize("sllmr_valid_auc, served", [(0.8101, "sllmr"), (0.8100, "base"), (0.7900, "base")])
def test_the_job_serves_sllmr_only_where_it_beats_base_on_validation(tmp_path, sllmr_valid_auc, served):
    where = Layout(str(tmp_path))
    _finished_run(where.run_dir("dnn", "base", 0), "base", 0.8100)
    _finished_run(where.run_dir("dnn", "sllmr", 0), "sllmr", sllmr_valid_auc)
    config = MainJobConfig(work_dir=str(tmp_path), backbones=("dnn",), methods=("base", "sllmr"))
    choice = export_choice(where, config)
    assert (choice.method, choice.model_dir) == (served, where.run_dir("dnn", served, 0))
    assert f"AUC {sllmr_valid_auc:.4f} against base's 0.8100" in choice.reason
    asked_for_base = export_choice(where, dataclasses.replace(config, export_method="base"))
    assert (asked_for_base.method, asked_for_base.model_dir) == ("base", where.run_dir("dnn", "base", 0))


def test_a_stage_that_refuses_its_input_stops_the_job_in_one_line(tmp_path):
    flagfile = tmp_path / "prepare.flags"
    flagfile.write_text("--dataset=no_such_dataset\n")
    done = main_job(str(tmp_path / "work"), {"prepare": str(flagfile)})
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-2:]
    assert last[0].startswith("sllmr-prepare: error:") and "no_such_dataset" in last[0]
    assert last[1].startswith("sllmr-main: error: sllmr-prepare stopped")


def metrics(work_dir: str, method: str, seed: int) -> dict:
    return json.load(open(f"{work_dir}/experiment/runs/dnn/{method}/seed{seed}/metrics.json"))


def assert_rows_are_the_runs_metrics(rows: list[dict], runs: dict) -> None:
    """Each results.csv row: the mean over seeds of the runs' test AUC, their n, and the gain over
    base as the mean of the per-seed differences. sllmr_checked's run of a seed is sllmr's where
    its validation AUC is above base's, else base's."""
    def run(method: str, seed: int) -> dict:
        if method == "sllmr_checked":
            ships = beats_base_on_validation(runs[("sllmr", seed)], runs[("base", seed)])
            return runs[("sllmr" if ships else "base", seed)]
        return runs[(method, seed)]

    for row in rows:
        auc = {seed: run(row["method"], seed)["test"][row["segment"]] for seed in (0, 1)}
        assert float(row["auc_mean"]) == pytest.approx(np.mean([auc[s]["auc"] for s in (0, 1)]))
        assert int(row["n"]) == auc[0]["n"]
        if row["method"] != "base":
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
