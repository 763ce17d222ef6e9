"""Several samplers on one process, side by side: ``compare.json``, ``compare.md``, overlay plots."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bayesgen.core.config import CompareConfig, TrainConfig, ValidateConfig, build
from bayesgen.core.errors import ConfigError
from bayesgen.core.io import check_output_path, write_json, write_text
from bayesgen.core.model import TrainedModel
from bayesgen.core.registry import get_sampler
from bayesgen.core.training import train
from bayesgen.validation.report import Truth, evaluate, plot_overlays


def training_config(config: CompareConfig, sampler: str, run_dir: Path) -> TrainConfig:
    """How ``compare`` trains ``sampler``: as ``bayesgen train`` would (its recipe, then the
    process's defaults), with the data, backbone and seed of the comparison and, for every
    sampler alike, whichever of steps, batch size, learning rate and backbone options it sets."""
    shared = {"steps": config.steps, "batch_size": config.batch_size, "lr": config.lr}
    return build(TrainConfig, {
        "process": config.process, "sampler": sampler, "backbone": config.backbone, "events": config.train_events,
        "seed": config.seed, "bayesian": config.bayesian, "bayes_options": config.bayes_options,
        "device": config.device, "out": str(run_dir), "resume": (run_dir / "checkpoint.pt").exists(),
        "backbone_options": config.backbone_options, "sampler_options": config.sampler_options.get(sampler, {}),
        **{name: value for name, value in shared.items() if value is not None}})


def train_runs(config: CompareConfig, out: Path, progress: bool) -> list[Path]:
    """Train each sampler on identical data with the same backbone; resume finished ones."""
    for name in config.sampler_names:
        get_sampler(name)  # unknown names fail before any training
    return [train(training_config(config, name, out / "runs" / name), progress=progress)
            for name in config.sampler_names]


def labelled_models(run_dirs: list[Path], device: str) -> dict[str, TrainedModel]:
    models = [TrainedModel.load(run_dir, device) for run_dir in run_dirs]
    processes = {m.config.process for m in models}
    if len(processes) > 1:
        raise ConfigError(f"runs to compare must share one process, got {', '.join(sorted(processes))}")
    samplers = [m.config.sampler for m in models]
    return {(m.config.sampler if samplers.count(m.config.sampler) == 1 else f"{m.config.sampler} ({d.name})"): m
            for m, d in zip(models, run_dirs)}


def _times_floor(m: dict[str, Any], metric: str) -> str:
    ratio = m.get(f"{metric}_over_floor")
    return "" if ratio is None else f" ({ratio:.1f}× floor)"


def markdown_table(result: dict[str, Any]) -> str:
    """``compare.md``: one summary table and one table of observables, each metric beside its
    truth-vs-truth floor."""
    samplers = result["samplers"]
    first = next(iter(samplers.values()))
    lines = [f"# {result['process']}: {', '.join(samplers)} on {result['n_events']:,} events", "",
             f"Truth: {first['n_truth']:,} events; generated: {first['floor']['n_generated']:,} events per sampler. "
             f"Floors: {first['floor']['source']}.", "",
             "| sampler | parameters | training steps | training time [s] | generation [events/s] "
             "| network calls / event | classifier AUC (truth vs truth: 0.5 ± σ) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for label, s in samplers.items():
        auc = s["classifier"]
        lines.append(f"| {label} | {s['parameters']:,} | {s['training_steps']:,} | {s['training_seconds']:.0f} | "
                     f"{s['generation_events_per_s']:,.0f} | {s['evaluations_per_event']} | "
                     f"{auc['auc']:.3f} ± {auc['auc_std']:.3f} (0.5 ± {auc['auc_floor_std']:.3f}) |")
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
    run_dirs = [Path(r) for r in config.runs] or train_runs(config, out, progress)
    models = labelled_models(run_dirs, config.device)
    process = next(iter(models.values())).process
    truth = Truth.draw(process, config.events, config.seed)
    validation = ValidateConfig(events=config.events, draws=config.draws, sample_steps=config.sample_steps,
                                seed=config.seed, device=config.device, keep_unphysical=config.keep_unphysical)
    evaluations = {label: evaluate(model, truth, validation) for label, model in models.items()}
    result = {"process": process.name, "n_events": config.events, "draws": config.draws,
              "samplers": {label: e.summary for label, e in evaluations.items()}}
    plot_overlays(process, truth, evaluations, out, config.events * config.draws)
    write_json(out / "compare.json", result)
    write_text(out / "compare.md", markdown_table(result))
    return result
