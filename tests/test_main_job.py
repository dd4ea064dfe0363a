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
    "score": ["--flagfile=flags/score_synthetic_simulated.flags", "--num_orders=1"],
    "train": ["--flagfile=flags/train_protocol.flags", "--epochs=1", "--num_bootstrap=20", "--batch_size=256"],
}


def main_job(work_dir: str, flagfiles: dict) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sllmr_tf.bins.main", f"--work_dir={work_dir}", "--backbones=dnn",
               "--methods=base,sllmr", "--seeds=2", *(f"--{name}_flagfile={path}" for name, path in flagfiles.items())]
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
        for seed in (0, 1):
            assert os.path.exists(f"{work_dir}/experiment/runs/dnn/{method}/seed{seed}/metrics.json")
    assert os.path.exists(f"{work_dir}/export/1/saved_model.pb")
    served = json.load(open(f"{work_dir}/export/1/assets.extra/sllmr_run.json"))
    assert (served["backbone"], served["method"], served["seed"]) == ("dnn", "sllmr", 0)
    assert open(f"{work_dir}/comparison.md").read().strip() in first.stdout


def test_the_closing_table_is_the_runs_metrics(job):
    work_dir, first, _, _ = job
    runs = {(m, s): json.load(open(f"{work_dir}/experiment/runs/dnn/{m}/seed{s}/metrics.json"))
            for m in ("base", "sllmr") for s in (0, 1)}
    rows = {r.method: r for r in comparison.compare(f"{work_dir}/experiment/runs")}
    for method in ("base", "sllmr"):
        for segment in comparison.AUC_SEGMENTS:
            aucs = [runs[(method, s)]["test"][segment]["auc"] for s in (0, 1)]
            assert rows[method].absolute[segment].value == pytest.approx(np.mean(aucs))
        gaucs = [runs[(method, s)]["test"]["gauc"]["value"] for s in (0, 1)]
        assert rows[method].absolute["gauc"].value == pytest.approx(np.mean(gaucs))
    deltas = [runs[("sllmr", s)]["test"]["overall"]["auc"] - runs[("base", s)]["test"]["overall"]["auc"] for s in (0, 1)]
    delta = rows["sllmr"].delta["overall"]
    half = scipy.stats.t.ppf(0.975, 1) * np.std(deltas, ddof=1) / math.sqrt(2)
    assert (delta.value, delta.low, delta.high) == pytest.approx((np.mean(deltas), np.mean(deltas) - half,
                                                                  np.mean(deltas) + half))
    # The printed table shows exactly these figures, and a verdict on sllmr with its interval.
    closing = open(f"{work_dir}/comparison.md").read()
    base_line = next(line for line in closing.splitlines() if line.startswith("| dnn | base |"))
    assert f"{rows['base'].absolute['overall'].value:.4f}" in base_line
    assert f"- sllmr (dnn, 2 seeds) " in closing and delta.text(signed=True) in closing


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


def test_a_stage_that_refuses_its_input_stops_the_job_in_one_line(tmp_path):
    flagfile = tmp_path / "prepare.flags"
    flagfile.write_text("--dataset=csv\n--raw_dir=/nonexistent\n")
    done = main_job(str(tmp_path / "work"), {"prepare": str(flagfile)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("sllmr-main: error: sllmr-prepare stopped")
