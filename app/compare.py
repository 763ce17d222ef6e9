"""Several samplers on one process, side by side: ``compare.json``, ``compare.md``, overlay plots
and ``histograms.root`` (every model's histograms under its name)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bayesgen.app.validate import evaluate
from bayesgen.core.errors import ConfigError
from bayesgen.core.registry import get_sampler
from bayesgen.engine.config import CompareConfig
from bayesgen.engine.io import check_output_path, write_json, write_text
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.training import train
from bayesgen.validation.histfile import root_entries, write_root
from bayesgen.validation.report import draw_truth, plot_overlays, validation_histograms
from bayesgen.validation.summary import markdown_table


def sampler_choice(config: CompareConfig, label: str) -> tuple[str, dict[str, Any]]:
    """The plugin and options behind a ``--samplers`` label: ``[compare.sampler_options.LABEL]``
    holds the options and may name the plugin with ``sampler = "NAME"`` (so one plugin appears
    under several labels, e.g. ``ddpm_learned_sigma``); otherwise the label is the plugin's name."""
    options = dict(config.sampler_options.get(label, {}))
    return options.pop("sampler", label), options


def train_runs(config: CompareConfig, out: Path, progress: bool) -> dict[str, Path]:
    """Train each labelled sampler on identical data with the same backbone into
    ``out/runs/LABEL``, each with its recipe unless the comparison sets the budget; resume
    finished ones."""
    choices = {label: sampler_choice(config, label) for label in config.sampler_names}
    for name, _ in choices.values():
        get_sampler(name)  # unknown names fail before any training
    runs = {}
    for label, (name, options) in choices.items():
        run_dir = out / "runs" / label
        runs[label] = train(config.training(sampler=name, sampler_options=options, out=str(run_dir),
                                            resume=(run_dir / "checkpoint.pt").exists()), progress=progress)
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
    validation = config.validation()
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
