"""``bayesgen laplace``: a Bayesian run made from a trained deterministic run by the Laplace
posterior of its output layers (:mod:`bayesgen.bayes.laplace`): posterior means at the trained
(EMA) weights, widths from the curvature of the training events' likelihood there (Kronecker
factored, or diagonal), the prior's width by the Laplace evidence unless given. The new run
directory holds an ordinary Bayesian checkpoint (``generate``/``validate --draws M`` draw its
ensemble) and records the fit under ``laplace``; it has no optimiser state, so it cannot be
trained on."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from bayesgen.bayes import named_variational_layers
from bayesgen.bayes.laplace import best_prior_std, center_inputs, empirical_fisher, kronecker_factors
from bayesgen.core.errors import ConfigError, RunError
from bayesgen.core.seeding import derive_seed, torch_generator
from bayesgen.engine.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from bayesgen.engine.config import LaplaceConfig, TrainConfig
from bayesgen.engine.device import resolve_device
from bayesgen.engine.io import write_json
from bayesgen.engine.lock import RunLock
from bayesgen.engine.model import build_model
from bayesgen.engine.training import TrainingData, prepare_data


def prior_words(record: dict[str, Any]) -> str:
    """A fit's prior in words, e.g. "prior N(0, 0.251²) by the evidence"; one width per layer as
    "prior N(0, σ²) by the evidence per layer, σ 0.112–0.355"."""
    chosen = "given" if record["prior_from"] == "given" else f"by the {record['prior_from']}"
    widths = record["prior_std"]
    if isinstance(widths, list):
        return f"prior N(0, σ²) {chosen}, σ {min(widths):.3g}–{max(widths):.3g}"
    return f"prior N(0, {widths:.3g}²) {chosen}"


def _source_state(run_dir: str | Path) -> tuple[dict, TrainConfig]:
    """The checkpoint of a finished deterministic run, or a :class:`RunError` saying why not."""
    state = load_checkpoint(run_dir)
    config = TrainConfig(**state["config"])
    if config.bayesian:
        raise RunError(f"{run_dir} is a Bayesian run already; the Laplace posterior is made from a deterministic one")
    if state["step"] < config.steps:
        raise RunError(f"{run_dir} is unfinished ({state['step']:,} of {config.steps:,} steps); finish it first "
                       f"with `bayesgen train --out {run_dir} --resume`")
    return state, config


def _means_from(sampler: torch.nn.Module, trained: dict[str, torch.Tensor], run_dir: str | Path) -> None:
    """Load a deterministic network's weights into its Bayesian twin: ``weight``/``bias`` of
    each variational layer become its posterior means; the posterior's own entries (widths,
    centres, Kronecker bases) keep their values; any other entry missing is a :class:`RunError`."""
    posterior_layers = named_variational_layers(sampler)
    state = sampler.state_dict()
    for name in state:
        layer, _, entry = name.rpartition(".")
        if layer not in posterior_layers:
            source = name
        elif entry in ("weight_mean", "bias_mean"):
            source = f"{layer}.{entry.removesuffix('_mean')}"
        else:
            continue
        if source not in trained:
            raise RunError(f"the checkpoint of {run_dir} has no {source!r}: it does not match its own configuration")
        state[name] = trained[source]
    sampler.load_state_dict(state)


def _batches(data: TrainingData, batch_size: int) -> list[slice]:
    return [slice(start, start + batch_size) for start in range(0, len(data.features), batch_size)]


def laplace(run_dir: str | Path, config: LaplaceConfig) -> tuple[Path, dict[str, Any]]:
    """Write the Laplace posterior of ``run_dir``'s output layers as a Bayesian run into
    ``config.out`` (by default ``RUN_laplace``), holding that directory's lock; return the
    directory and the fit's record (the prior's width and evidence, the layers, the events,
    the seconds it took)."""
    state, source = _source_state(run_dir)
    out = Path(config.out or f"{str(run_dir).rstrip('/')}_laplace")
    with RunLock(out):
        if checkpoint_path(out).exists():
            raise RunError(f"{out} already holds a run; choose another --out")
        run, weights, record = _fit(run_dir, state, dataclasses.replace(source, out=str(out)), config)
        save_checkpoint(out, {**{k: v for k, v in state.items() if k not in ("format", "optimizer")},
                              "config": dataclasses.asdict(run), "model": weights, "ema": weights, "laplace": record})
        write_json(out / "config.json", dataclasses.asdict(run))
    return out, record


def _fit(run_dir: str | Path, state: dict, source: TrainConfig,
         config: LaplaceConfig) -> tuple[TrainConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The Bayesian run's settings, its weights (CPU) and the fit's record."""
    started = time.perf_counter()
    patterns = [p.strip() for p in config.deterministic_layers.split(",") if p.strip()]
    bayes_options = {"deterministic_layers": patterns, "center_inputs": True, "prior_std": 1.0,
                     "posterior": "kronecker" if config.posterior == "kronecker" else "mean_field"}
    run = dataclasses.replace(source, bayesian=True, bayes_options=bayes_options, resume=False,
                              device=config.device, threads=config.threads)
    device = resolve_device(config.device)
    data = prepare_data(run, state.get("process_options"), device)
    sampler = build_model(run, data.process, data.raw_conditions)
    if not named_variational_layers(sampler):
        raise ConfigError(f"--deterministic-layers {config.deterministic_layers!r} leaves no layer of the "
                          f"{source.sampler} sampler's networks to the posterior")
    _means_from(sampler, {k: v.to(device) for k, v in state["ema"].items()}, run_dir)
    sampler.eval()
    batches = _batches(data, config.batch_size)

    def cond(rows: slice) -> torch.Tensor | None:
        return None if data.cond is None else data.cond[rows]

    center_inputs(sampler, [lambda rows=rows: sampler.loss(data.features[rows], cond(rows)) for rows in batches])
    scale = sampler.likelihood_scale()

    def nll(index: int, rows: slice):
        generator = torch_generator(derive_seed(source.seed, "laplace", index), device)
        events = data.features[rows]
        return lambda: sampler.loss(events, cond(rows), generator=generator) * len(events) / scale

    fit = kronecker_factors if config.posterior == "kronecker" else empirical_fisher
    curvature = fit(sampler, [(nll(i, rows), None if data.weights is None else data.weights[rows])
                              for i, rows in enumerate(batches)])
    prior_std = config.prior_std or best_prior_std(sampler, curvature, per_layer=config.prior_per_layer)
    curvature.set_posterior(sampler, prior_std)
    chosen = "given" if config.prior_std else "evidence per layer" if config.prior_per_layer else "evidence"
    record = {"source": str(run_dir), "posterior": config.posterior, "prior_std": prior_std, "prior_from": chosen,
              "log_evidence": curvature.log_evidence(sampler, prior_std), "events": curvature.events,
              "layers": list(named_variational_layers(sampler)),
              "seconds": time.perf_counter() - started}
    if config.prior_per_layer:   # bayesianize names the layers within the network
        prior_std = dict(zip(named_variational_layers(sampler.network), prior_std))
    run = dataclasses.replace(run, bayes_options={**bayes_options, "prior_std": prior_std})
    return run, {k: v.detach().cpu() for k, v in sampler.state_dict().items()}, record
