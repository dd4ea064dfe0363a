"""metrics.json as the text the binaries print: segment tables and the gate's summary."""
from __future__ import annotations

from sllmr_tf import segments
from sllmr_tf.training.config import FULL_RANKING_SUFFIX


def metrics_summary(metrics: dict) -> str:
    """A compact table of the metrics of each evaluated split (sampled, then full ranking), then
    the gate's line."""
    lines = []
    for split in (key for name in ("train", "valid", "test") for key in (name, name + FULL_RANKING_SUFFIX)):
        if split not in metrics:
            continue
        block = metrics[split]
        lines.append(f"{split}: segment            n      AUC [95% interval]        logloss")
        for name in segments.EVAL_SEGMENTS:
            seg = block[name]
            auc = "n/a" if seg["auc"] is None else (
                f"{seg['auc']:.4f} [{seg['auc_ci95'][0]:.4f}, {seg['auc_ci95'][1]:.4f}]"
                if seg["auc_ci95"] else f"{seg['auc']:.4f}")
            loss = "n/a" if seg["logloss"] is None else f"{seg['logloss']:.4f}"
            flag = f"  (too small: < {segments.MIN_EVENTS} events)" if seg["too_small"] else ""
            lines.append(f"  {name:<18} {seg['n']:>8,}  {auc:<26} {loss}{flag}")
        g = block["gauc"]
        if g["value"] is not None:
            lines.append(f"  {'gauc':<18} {g['n_users']:>8,}u {g['value']:.4f} "
                         f"[{g['ci95'][0]:.4f}, {g['ci95'][1]:.4f}]")
    if "gate" in metrics:
        lines.append(gate_summary(metrics["gate"]))
    return "\n".join(lines)


def gate_summary(gate: dict) -> str:
    """One line: mean weight and alpha per pair segment, agreement AUC, Spearman with the truth."""

    def means(values: dict) -> str:
        return ", ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None)

    known = gate["agreement_auc"]
    fit = gate.get("fit")
    fitted = f" fitted on {fit['known_pairs']:,} known-outcome pairs of {fit['users']:,} users," if fit else ""
    line = (f"gate:{fitted} over {gate['pairs']:,} pairs: mean weight {means(gate['weight_mean'])}; mean alpha "
            f"{means(gate['alpha_mean'])}; AUC of alpha for the LLM's agreement with train outcomes "
            + (f"{known['auc']:.3f} (n={known['n']:,})" if known["auc"] is not None else "n/a"))
    for name, label in (("spearman_true_correct_prob", "true correctness"),
                        ("spearman_true_informed_prob", "informed correctness")):
        if gate.get(name) is not None:
            line += f"; Spearman(weight, {label}) {gate[name]:.3f}"
    if "paper_gate" in gate:
        line += "; paper gate " + ", ".join(f"{k} {v:.3f}" for k, v in gate["paper_gate"].items())
    return line
