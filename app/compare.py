"""Several samplers on one process, side by side: ``compare.json``, ``compare.md``, overlay plots
and ``histograms.root`` (every model's histograms under its name)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bayesgen.core.errors import ConfigError
from bayesgen.core.registry import get_sampler
from bayesgen.engine.config import CompareConfig, TrainConfig, ValidateConfig
from bayesgen.engine.io import check_output_path, write_json, write_text
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import train
from bayesgen.validation.histfile import root_entries, write_root
from bayesgen.validation.report import draw_truth, evaluate, plot_overlays, validation_histograms


def sampler_choice(config: CompareConfig, label: str) -> tuple[str, dict[str, Any]]:
    """The plugin and options behind a ``--samplers`` label: ``[compare.sampler_options.LABEL]``
    holds the options and may name the plugin with ``sampler = "NAME"`` (so one plugin appears
    under several labels, e.g. ``ddpm_learned_sigma``); otherwise the label is the plugin's name."""
    options = dict(config.sampler_options.get(label, {}))
    return options.pop("sampler", label), options


def train_runs(config: CompareConfig, out: Path, progress: bool) -> dict[str, Path]:
    """Train each labelled sampler with identical data, backbone, steps and optimiser into
    ``out/runs/LABEL``; resume finished ones."""
    choices = {label: sampler_choice(config, label) for label in config.sampler_names}
    for name, _ in choices.values():
        get_sampler(name)  # unknown names fail before any training
    runs = {}
    for label, (name, options) in choices.items():
        run_dir = out / "runs" / label
        runs[label] = train(TrainConfig(
            process=config.process, sampler=name, backbone=config.backbone, steps=config.steps,
            batch_size=config.batch_size, lr=config.lr, events=config.train_events, seed=config.seed,
            bayesian=config.bayesian, bayes_options=config.bayes_options,
            device=config.device, out=str(run_dir), resume=(run_dir / "checkpoint.pt").exists(),
            backbone_options=config.backbone_options, sampler_options=options),
            progress=progress)
    return runs


def labelled_models(run_dirs: list[Path], device: str, labels: list[str] | None = None) -> dict[str, TrainedModel]:
    """The runs' models by label: ``labels``, else the sampler's name (with the run directory's
    name where two runs share a sampler)."""
    models = [TrainedModel.load(run_dir, device) for run_dir in run_dirs]
    processes = {m.config.process for m in models}
    if len(processes) > 1:
        raise ConfigError(f"runs to compare must share one process, got {', '.join(sorted(processes))}")
    samplers = [m.config.sampler for m in models]
    labels = labels or [m.config.sampler if samplers.count(m.config.sampler) == 1 else f"{m.config.sampler} ({d.name})"
                        for m, d in zip(models, run_dirs)]
    return dict(zip(labels, models))


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


def compare(config: CompareConfig, progress: bool = True) -> dict[str, Any]:
    """Train (or load ``config.runs``), evaluate every model on the same truth, write the report."""
    out = check_output_path(config.out)
    out.mkdir(exist_ok=True)
    if config.runs:
        models = labelled_models([Path(r) for r in config.runs], config.device)
    else:
        runs = train_runs(config, out, progress)
        models = labelled_models(list(runs.values()), config.device, list(runs))
    process = next(iter(models.values())).process
    validation = ValidateConfig(events=config.events, truth_events=config.truth_events, draws=config.draws,
                                sample_steps=config.sample_steps, seed=config.seed, device=config.device,
                                keep_unphysical=config.keep_unphysical)
    truth = draw_truth(process, validation)
    evaluations = {label: evaluate(model, truth, validation, progress) for label, model in models.items()}
    n_events = next(iter(evaluations.values())).summary["n_events"]
    result = {"process": process.name, "n_events": n_events, "draws": config.draws,
              "samplers": {label: e.summary for label, e in evaluations.items()}}
    plot_overlays(process, truth, evaluations, out, n_events * config.draws, progress)
    write_root(out / "histograms.root", {key: h for label, e in evaluations.items()
                                         for key, h in root_entries(validation_histograms(process, truth, e),
                                                                    label).items()})
    write_json(out / "compare.json", result)
    write_text(out / "compare.md", markdown_table(result))
    return result
