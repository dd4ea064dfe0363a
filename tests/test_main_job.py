"""sllmr-main, the README's first command, end to end on a tiny world: every stage, the closing
table from the runs' own metrics.json, the export, and a rerun that redoes nothing."""
from __future__ import annotations

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

from sllmr_tf.experiments import comparison

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow

# The stages' flagfiles, made tiny: a small synthetic world, the simulated teacher, one epoch.
FLAGFILES = {
    "prepare": ["--flagfile=flags/prepare_synthetic.flags", "--synthetic_users=400", "--synthetic_items=200",
                "--num_shards=2"],
    "score": ["--flagfile=flags/score_synthetic_simulated.flags", "--num_orders=1", "--max_lists=200"],
    "train": ["--flagfile=flags/train_protocol.flags", "--epochs=1", "--num_bootstrap=20", "--batch_size=256"],
}


def main_job(work_dir: str, flagfiles: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sllmr_tf.bins.main", f"--work_dir={work_dir}", "--backbones=dnn",
               "--methods=base,sllmr", "--seeds=1", *(f"--{name}_flagfile={path}" for name, path in flagfiles.items())]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """The main job run twice on the same work_dir: (work_dir, first run, rerun, mtimes after the first)."""
    root = tmp_path_factory.mktemp("main_job")
    flagfiles = {}
    for name, lines in FLAGFILES.items():
        flagfiles[name] = str(root / f"{name}.flags")
        with open(flagfiles[name], "w") as f:
            f.write("\n".join(lines) + "\n")
    work_dir = str(root / "work")
    first = main_job(work_dir, flagfiles)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    written = {path: os.stat(path).st_mtime_ns for path in glob.glob(f"{work_dir}/**/*", recursive=True)
               if os.path.isfile(path)}
    return work_dir, first, main_job(work_dir, flagfiles), written


def test_every_stage_runs_in_order_and_writes_its_output(job):
    work_dir, first, _, _ = job
    headers = re.findall(r"== \[(\d)/5\] (\w+)", first.stdout)
    assert [name for _, name in headers if name != "done"] == ["prepare", "score", "train", "export", "comparison"]
    assert os.path.exists(f"{work_dir}/data/stats.json")
    assert glob.glob(f"{work_dir}/pairs/pairs-*")
    for method in ("base", "sllmr"):
        assert os.path.exists(f"{work_dir}/experiment/runs/dnn/{method}/seed0/metrics.json")
    assert {"reliability.md", "reliability.csv", "reliability.png"} <= set(os.listdir(f"{work_dir}/pairs"))
    assert "| all | all pairs |" in first.stdout  # the reliability table, printed
    assert os.path.exists(f"{work_dir}/export/1/saved_model.pb")
    served = json.load(open(f"{work_dir}/export/1/assets.extra/sllmr_run.json"))
    assert (served["backbone"], served["method"], served["seed"]) == ("dnn", "sllmr", 0)
    assert open(f"{work_dir}/comparison.md").read().strip() in first.stdout


def test_the_closing_table_is_the_runs_metrics(job):
    work_dir, first, _, _ = job
    runs = {m: json.load(open(f"{work_dir}/experiment/runs/dnn/{m}/seed0/metrics.json")) for m in ("base", "sllmr")}
    rows = {r.method: r for r in comparison.compare(f"{work_dir}/experiment/runs")}
    for method, metrics in runs.items():
        for segment in comparison.AUC_SEGMENTS:
            cell = rows[method].absolute[segment]
            assert (cell.value, cell.low, cell.high) == pytest.approx((metrics["test"][segment]["auc"],
                                                                       *metrics["test"][segment]["auc_ci95"]))
        assert rows[method].absolute["gauc"].value == pytest.approx(metrics["test"]["gauc"]["value"])
        assert rows[method].absolute["logloss"].value == pytest.approx(metrics["test"]["overall"]["logloss"])
    delta = rows["sllmr"].delta["overall"]
    assert delta.value == pytest.approx(runs["sllmr"]["test"]["overall"]["auc"] - runs["base"]["test"]["overall"]["auc"])
    # The printed table shows exactly these figures; one seed gives no interval, and the verdict says so.
    closing = open(f"{work_dir}/comparison.md").read()
    base_line = next(line for line in closing.splitlines() if line.startswith("| dnn | base |"))
    assert rows["base"].absolute["overall"].text() in base_line
    assert f"- sllmr (dnn, 1 seed): overall AUC {delta.text(signed=True)} against base, from one seed" in closing


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


def test_a_rerun_reuses_every_stage_and_says_so(job):
    work_dir, _, rerun, written = job
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    out = rerun.stdout
    assert "already prepared" in out and "nothing to do" in out
    assert out.count("trained earlier, reusing its metrics.json") == 2
    assert "already serves this run" in out
    assert not os.path.exists(f"{work_dir}/export/2")
    changed = [path for path, mtime in written.items()
               if os.path.exists(path) and os.stat(path).st_mtime_ns != mtime and not path.endswith(
                   ("comparison.md", ".md", ".csv", ".png"))]
    assert changed == []  # only the tables and plots are written again


def test_a_stage_that_refuses_its_input_stops_the_job_in_one_line(tmp_path):
    flagfile = tmp_path / "prepare.flags"
    flagfile.write_text("--dataset=csv\n--raw_dir=/nonexistent\n")
    done = main_job(str(tmp_path / "work"), {"prepare": str(flagfile)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("sllmr-main: error: sllmr-prepare stopped")
