"""The text summary that ``validate``, ``compare`` and the demo print: each metric as a multiple
of its truth-vs-truth floor (see :mod:`bayesgen.validation.floors`), one column per model."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["floor_table"]


def _cell(metrics: Mapping[str, Any]) -> str:
    if "skipped" in metrics:
        return "not compared (below)"
    if "w1_over_floor" not in metrics:
        return f"W1 {metrics['w1']:.3g}, no floor"
    return (f"W1 {metrics['w1_over_floor']:5.1f}×  dev {metrics['max_rel_dev_bulk_over_floor']:5.1f}×  "
            f"χ² {metrics['chi2_ndf_over_floor']:5.1f}×")


def floor_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Lines of text: per observable and model (label → ``metrics.json`` content), W1, the
    largest bulk deviation and χ²/ndf divided by their floors (≈ 1: as close as truth to truth),
    each observable that could not be compared with the reason, then each model's classifier
    AUC beside its floor and the numbers of events behind them."""
    first = next(iter(summaries.values()))
    width = max(len(name) for name in first["observables"])
    lines = [f"{'metric / its truth-vs-truth floor':<{width}}  " + "  ".join(f"{label:<33}" for label in summaries)]
    for name in first["observables"]:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_cell(s['observables'][name]):<33}"
                                                   for s in summaries.values()))
    for label, summary in summaries.items():
        reasons: dict[str, list[str]] = {}  # reason → observables, so that one line tells a shared one
        for name, metrics in summary["observables"].items():
            if "skipped" in metrics:
                reasons.setdefault(metrics["skipped"], []).append(name)
        for reason, names in reasons.items():
            lines.append(f"{', '.join(names)}{f' ({label})' if len(summaries) > 1 else ''}: {reason}")
    for label, summary in summaries.items():
        auc = summary["classifier"]
        lines.append(f"{label}: classifier AUC {auc['auc']:.3f} ± {auc['auc_std']:.3f}, truth vs truth "
                     f"0.5 ± {auc['auc_floor_std']:.3f} ({auc['auc_pull']:+.1f} σ); {summary['n_truth']:,} truth "
                     f"and {summary['n_generated']:,} generated events")
    return "\n".join(lines)
