"""Results tables: mean and spread over seeds, paired gains over base, small segments never ranked."""
import csv
import json
import math

import pytest

from sllmr_tf import segments
from sllmr_tf.experiments import results


def write_run(root, backbone, method, seed, aucs, too_small=(), splits=("test",)):
    blocks = {}
    for segment in segments.EVAL_SEGMENTS:
        auc = aucs.get(segment, 0.7)
        blocks[segment] = {"auc": auc, "auc_ci95": [auc - 0.01, auc + 0.01], "n": 1000,
                           "too_small": segment in too_small}
    path = root / backbone / method / f"seed{seed}"
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(
        {"backbone": backbone, "method": method, "seed": seed, **{split: blocks for split in splits}}))


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
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


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
