"""Results tables: mean and spread over seeds, paired gains over base, small segments never ranked."""
import csv
import json
import math

import numpy as np
import pytest

from sllmr_tf import segments
from sllmr_tf.experiments import results
from sllmr_tf.training.gate_report import calibration

PNG = b"\x89PNG\r\n\x1a\n"


def write_run(root, backbone, method, seed, aucs, too_small=(), splits=("test",), gate=None, valid_auc=None):
    blocks = {}
    for segment in segments.EVAL_SEGMENTS:
        auc = aucs.get(segment, 0.7)
        blocks[segment] = {"auc": auc, "auc_ci95": [auc - 0.01, auc + 0.01], "n": 1000,
                           "too_small": segment in too_small}
    path = root / backbone / method / f"seed{seed}"
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(
        {"backbone": backbone, "method": method, "seed": seed, **{split: blocks for split in splits},
         **({"gate": gate} if gate else {}), **({"valid": {"overall": {"auc": valid_auc}}} if valid_auc else {})}))


def line(summary, method, segment="overall"):
    return next(s for s in summary if s["method"] == method and s["segment"] == segment)


def test_gain_over_base_is_paired_by_seed(tmp_path):
    for seed, (base, sllmr) in enumerate([(0.70, 0.71), (0.60, 0.61), (0.80, 0.81)]):
        write_run(tmp_path, "deepfm", "base", seed, {"overall": base})
        write_run(tmp_path, "deepfm", "sllmr", seed, {"overall": sllmr})
    summary = results.summarize(results.collect(str(tmp_path)))
    s = line(summary, "sllmr")
    # seeds disagree by 0.1 AUC, yet the paired gain is exactly +0.01 with a zero-width interval
    assert s["auc_std"] == pytest.approx(0.1)
    assert s["delta_vs_base"] == pytest.approx(0.01)
    assert s["delta_ci95_low"] == pytest.approx(0.01) and s["delta_ci95_high"] == pytest.approx(0.01)
    assert s["run_ci_halfwidth"] == pytest.approx(0.01)
    assert math.isnan(line(summary, "base")["delta_vs_base"])


def test_a_method_checked_on_validation_is_its_run_where_validation_prefers_it_and_base_elsewhere(tmp_path):
    """Per seed, sllmr_checked is sllmr's run where sllmr's validation AUC beats base's, else base's
    (a tie keeps base): its test gain over base is sllmr's on the first seed and 0 on the others."""
    for seed, (valid_base, valid_sllmr) in enumerate([(0.70, 0.72), (0.70, 0.69), (0.70, 0.70)]):
        write_run(tmp_path, "deepfm", "base", seed, {"overall": 0.70}, valid_auc=valid_base)
        write_run(tmp_path, "deepfm", "sllmr", seed, {"overall": 0.73}, valid_auc=valid_sllmr)
    assert {r["method"] for r in results.collect(str(tmp_path))} == {"base", "sllmr"}
    summary = results.summarize(results.collect(str(tmp_path), checked=True))
    assert line(summary, "sllmr")["delta_vs_base"] == pytest.approx(0.03)
    checked = line(summary, "sllmr" + results.CHECKED_SUFFIX)
    assert checked["seeds"] == 3 and checked["delta_vs_base"] == pytest.approx(0.01)
    chosen = {m["seed"]: d for d, m in results.validation_checked(results.read_runs(str(tmp_path)))}
    assert chosen == {0: str(tmp_path / "deepfm" / "sllmr" / "seed0"), 1: str(tmp_path / "deepfm" / "base" / "seed1"),
                      2: str(tmp_path / "deepfm" / "base" / "seed2")}


def test_a_noisy_gain_gets_an_interval_that_covers_zero(tmp_path):
    for seed, (base, kd) in enumerate([(0.70, 0.72), (0.70, 0.69), (0.70, 0.705)]):
        write_run(tmp_path, "dnn", "base", seed, {"overall": base})
        write_run(tmp_path, "dnn", "kd", seed, {"overall": kd})
    s = line(results.summarize(results.collect(str(tmp_path))), "kd")
    assert s["delta_ci95_low"] < 0 < s["delta_ci95_high"]


def test_too_small_segments_are_reported_but_not_ranked(tmp_path):
    write_run(tmp_path, "dnn", "base", 0, {}, too_small=("longtail_items",))
    write_run(tmp_path, "dnn", "sllmr", 0, {"longtail_items": 0.9}, too_small=("longtail_items",))
    summary = results.summarize(results.collect(str(tmp_path)))
    assert line(summary, "sllmr", "longtail_items")["too_small"]
    assert "too small to rank" in results.to_markdown(summary)


def test_tables_and_plot_are_written(tmp_path):
    write_run(tmp_path / "runs", "dnn", "base", 0, {})
    write_run(tmp_path / "runs", "dnn", "sllmr", 0, {"overall": 0.72})
    paths = results.write(results.summarize(results.collect(str(tmp_path / "runs"))), str(tmp_path))
    md, table, png = paths
    assert "| dnn | sllmr | overall | 1 | 1,000 | 0.7200 |" in open(md).read()
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 2 * len(segments.EVAL_SEGMENTS)
    assert open(png, "rb").read(8) == PNG


def test_the_paper_layout_has_a_row_per_backbone_and_a_column_per_method_with_paired_gains(tmp_path):
    for seed, (base, sllmr) in enumerate([(0.70, 0.72), (0.60, 0.62)]):
        for backbone in ("deepfm", "dcn"):
            write_run(tmp_path, backbone, "base", seed, {"overall": base})
            write_run(tmp_path, backbone, "sllmr", seed, {"overall": sllmr})
    write_run(tmp_path, "dcn", "kd", 0, {"overall": 0.71})
    summary = results.summarize(results.collect(str(tmp_path)))
    rows = [line for line in results.to_paper_table(summary).splitlines() if line.startswith("| ")]
    assert rows[0] == "| backbone | base | kd | sllmr |"
    assert rows[1] == "| dcn | 0.6500 | 0.7100 | 0.6700 (+0.0200 [+0.0200, +0.0200]) |"
    assert rows[2] == "| deepfm | 0.6500 | - | 0.6700 (+0.0200 [+0.0200, +0.0200]) |"
    ordered = results.to_paper_table(summary, order=("sllmr", "kd")).splitlines()
    assert "| backbone | base | sllmr | kd |" in ordered


def test_full_ranking_results_are_tabulated_apart_only_when_every_run_has_them(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "dnn", "base", 0, {}, splits=("test", "test_full_ranking"))
    write_run(runs, "dnn", "sllmr", 0, {"overall": 0.72}, splits=("test", "test_full_ranking"))
    assert results.result_splits(str(runs)) == ["test", "test_full_ranking"]
    summary = results.summarize(results.collect(str(runs), "test_full_ranking"))
    paths = results.write(summary, str(tmp_path), "test_full_ranking")
    assert [p.rsplit("/", 1)[1] for p in paths] == [
        "results_full_ranking.md", "results_full_ranking.csv", "results_full_ranking.png"]
    assert "| dnn | 0.7000 | 0.7200 |" in open(paths[0]).read()
    write_run(runs, "dnn", "kd", 0, {})
    assert results.result_splits(str(runs)) == ["test"]


def test_the_auc_interval_is_the_t_interval_over_seeds_or_with_one_seed_the_runs_bootstrap(tmp_path):
    for seed, auc in enumerate([0.70, 0.74]):
        write_run(tmp_path / "two", "dnn", "base", seed, {"overall": auc})
    write_run(tmp_path / "one", "dnn", "base", 0, {"overall": 0.70})
    two = line(results.summarize(results.collect(str(tmp_path / "two"))), "base")
    _, low, high = results.mean_with_t_interval([0.70, 0.74])
    assert (two["auc_ci95_low"], two["auc_ci95_high"]) == pytest.approx((low, high))
    one = line(results.summarize(results.collect(str(tmp_path / "one"))), "base")
    assert (one["auc_ci95_low"], one["auc_ci95_high"]) == pytest.approx((0.69, 0.71))


def pairs(n=5000, seed=0):
    """Weights as the gate gives them (many exactly 0; the rest on a grid of 0.001, so that no
    weight sits within rounding of a bin edge), alpha, outcomes (-1: unknown) and the truth."""
    rng = np.random.default_rng(seed)
    weight = np.where(rng.random(n) < 0.4, 0.0, np.round(rng.beta(5, 2, n), 3).clip(0.001))
    truth = (1 + weight) / 2
    outcome = np.where(rng.random(n) < 0.3, -1, (rng.random(n) < truth).astype(int))
    return weight, rng.random(n), outcome, truth


def members(weight, b, last):
    """The pairs a bin's edges describe: weight 0, or [low, high) ([low, high] for the last bin)."""
    if b["bin"] == 0:
        return weight == 0
    below_high = weight <= b["weight_high"] if last else weight < b["weight_high"]
    return (weight > 0) & (weight >= b["weight_low"]) & below_high


def test_calibration_bins_hold_every_pair_once_with_weight_zero_apart():
    weight, alpha, outcome, truth = pairs()
    bins = calibration(weight, alpha, outcome, truth)
    assert sum(b["pairs"] for b in bins) == len(weight)
    assert bins[0]["bin"] == 0 and bins[0]["weight_mean"] == 0 and bins[0]["pairs"] == (weight == 0).sum()
    assert 2 <= len(bins) <= 12 and all(b["pairs"] > 0 for b in bins)
    for b in bins:
        assert b["weight_low"] <= b["weight_mean"] <= b["weight_high"]
    # quantile bins of the positive weights: about as many pairs each (ties on the grid aside)
    positive = [b["pairs"] for b in bins[1:]]
    assert max(positive) < 1.2 * min(positive)


def test_calibration_agreement_and_truth_are_those_of_the_pairs_in_each_bin():
    weight, alpha, outcome, truth = pairs()
    bins = calibration(weight, alpha, outcome, truth)
    known = outcome != -1
    for b in bins:
        take = members(weight, b, last=b is bins[-1])
        assert b["pairs"] == take.sum() and b["known"] == (take & known).sum()
        assert b["agreement"] == pytest.approx((outcome[take & known] == 1).mean(), abs=1e-4)
        assert b["true_correct_mean"] == pytest.approx(truth[take].mean(), abs=1e-4)
        assert b["alpha_mean"] == pytest.approx(alpha[take].mean(), abs=1e-4)
    no_truth = calibration(weight, alpha, outcome, np.full(len(weight), -1.0))
    assert all(b["true_correct_mean"] is None for b in no_truth)


def test_a_gate_that_gives_no_weight_has_one_bin():
    weight, alpha, outcome, truth = pairs()
    bins = calibration(np.zeros_like(weight), alpha, outcome, truth)
    assert [(b["bin"], b["pairs"]) for b in bins] == [(0, len(weight))]


def test_seeds_pool_by_bin_weighted_by_pairs_and_known_outcomes(tmp_path):
    def gate(pairs, known, agreement):
        return {"calibration": [{"bin": 1, "weight_low": 0.1, "weight_high": 0.3, "pairs": pairs, "weight_mean": 0.2,
                                 "alpha_mean": 0.6, "known": known, "agreement": agreement,
                                 "true_correct_mean": None}]}

    write_run(tmp_path, "dnn", "sllmr", 0, {}, gate=gate(100, 10, 0.9))
    write_run(tmp_path, "dnn", "sllmr", 1, {}, gate=gate(300, 30, 0.5))
    write_run(tmp_path, "dnn", "base", 0, {})
    curves = results.collect_calibration(str(tmp_path))
    assert list(curves) == [("dnn", "sllmr")]
    pooled = curves[("dnn", "sllmr")]
    assert pooled["seeds"] == 2 and pooled["pairs"] == 400
    (b,) = pooled["bins"]
    assert (b["pairs"], b["known"]) == (400, 40)
    assert b["agreement"] == pytest.approx((10 * 0.9 + 30 * 0.5) / 40)


def test_the_calibration_plot_is_written_only_when_a_run_has_a_gate(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "dnn", "base", 0, {})
    write_run(runs, "dnn", "kd", 0, {})
    assert results.write_calibration(str(runs), str(tmp_path)) is None
    assert not (tmp_path / results.CALIBRATION_PLOT).exists()
    weight, alpha, outcome, truth = pairs()
    write_run(runs, "dnn", "sllmr", 0, {}, gate={"calibration": calibration(weight, alpha, outcome, truth)})
    path = results.write_calibration(str(runs), str(tmp_path))
    assert path == str(tmp_path / results.CALIBRATION_PLOT)
    assert open(path, "rb").read(8) == PNG
