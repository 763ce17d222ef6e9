"""The text summaries of measured models: the table that ``validate``, ``compare`` and the demo
print (each metric as a multiple of its truth-vs-truth floor, see
:mod:`bayesgen.validation.floors`, one column per model) and ``compare.md``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["floor_table", "markdown_table", "likelihood_cell"]


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


def likelihood_cell(likelihood: dict[str, Any]) -> str:
    """``NLL ± error`` in nats per event, ``≤`` for a bound, ``–`` where skipped."""
    if "skipped" in likelihood:
        return "–"
    bound = "≤ " if likelihood["kind"] == "bound" else ""
    return f"{bound}{likelihood['nll_per_event']:.3f} ± {likelihood['nll_per_event_error']:.3f}"


def _times_floor(m: dict[str, Any], metric: str) -> str:
    ratio = m.get(f"{metric}_over_floor")
    return "" if ratio is None else f" ({ratio:.1f}× floor)"


def markdown_table(result: dict[str, Any]) -> str:
    """``compare.md``: one summary table and one table of observables, each metric beside its
    truth-vs-truth floor."""
    samplers = result["samplers"]
    first = next(iter(samplers.values()))
    lines = [f"# {result['process']}: {', '.join(samplers)}", "",
             f"Truth: {first['n_truth']:,} events; generated: {first['floor']['n_generated']:,} events per sampler. "
             f"Floors: {first['floor']['source']}.", "",
             "| sampler | parameters | training steps | training time [s] | generation [events/s] "
             "| network calls / event | classifier AUC (truth vs truth: 0.5 ± σ) | NLL [nats/event] |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for label, s in samplers.items():
        auc = s["classifier"]
        lines.append(f"| {label} | {s['parameters']:,} | {s['training_steps']:,} | {s['training_seconds']:.0f} | "
                     f"{s['generation_events_per_s']:,.0f} | {s['evaluations_per_event']} | "
                     f"{auc['auc']:.3f} ± {auc['auc_std']:.3f} (0.5 ± {auc['auc_floor_std']:.3f}) | "
                     f"{likelihood_cell(s['likelihood'])} |")
    banded = result.get("draws", 1) > 1
    lines += ["", "Per observable: W1 ± its spread over 5 batches (W1 / its floor) · largest bulk deviation "
              "(/ its floor) · χ²/ndf (/ its floor)"
              + (" · median σ_pred/mean · 1σ coverage of the band" if banded else ""), "",
              "| observable | " + " | ".join(samplers) + " |", "|---|" + "---|" * len(samplers)]
    for name in first["observables"]:
        cells = [m["skipped"] if "skipped" in m else
                 f"{m['w1']:.3g} ± {m['w1_std']:.2g}{_times_floor(m, 'w1')} · "
                 f"{m['max_rel_dev_bulk']:.1%}{_times_floor(m, 'max_rel_dev_bulk')} · "
                 f"{m['chi2_ndf']:.2f}{_times_floor(m, 'chi2_ndf')}"
                 + (f" · {m['sigma_pred_rel_median']:.1%} · {m['coverage_1sigma']:.0%} of {m['coverage_bins']}"
                    if banded else "")
                 for m in (s["observables"][name] for s in samplers.values())]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
