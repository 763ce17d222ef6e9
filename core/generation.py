"""Generation: batched, seeded, streamed to disk in chunks.

Chunk ``i`` draws its noise from the stream ``(seed, "generate", i)``, so a file's content
depends on the seed and the batch size only, not on the device's memory or the run's history.
A Bayesian model generates ``draws`` ensemble members at once: each chunk holds the same number
of events from every member, evaluated as one batch (see :func:`bayesgen.bayes.weight_draws`);
with ``draws = 1`` it uses the posterior means.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bayesgen.bayes import is_bayesian, weight_draws
from bayesgen.core.config import GenerateConfig
from bayesgen.core.errors import ConfigError
from bayesgen.core.io import SUFFIXES, check_output_path, open_writer
from bayesgen.core.model import TrainedModel
from bayesgen.core.seeding import derive_seed, torch_generator


@dataclass
class GenerationStats:
    """What one generation call did; ``n_events`` counts every ensemble member's events."""

    n_events: int
    seconds: float
    evaluations_per_event: int | None

    @property
    def events_per_second(self) -> float:
        return self.n_events / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class Chunk:
    """Generated events ``(n, n_quantities)`` in physical units and their ensemble member ``(n,)``."""

    events: np.ndarray
    draw: np.ndarray


def check_draws(model: TrainedModel, draws: int) -> None:
    if draws > 1 and not is_bayesian(model.sampler):
        raise ConfigError(f"--draws {draws} needs a Bayesian run (train with --bayesian); "
                          f"{model.config.out} is deterministic")


def event_chunks(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                 sample_steps: int | None = None, solver: str | None = None, draws: int = 1) -> Iterator[Chunk]:
    """Yield chunks of ``n_events`` events per ensemble member, about ``batch_size`` rows each."""
    check_draws(model, draws)
    device = model.sampler.device
    per_draw = max(1, batch_size // draws)
    ensemble = weight_draws(model.sampler, draws, derive_seed(seed, "ensemble")) if draws > 1 else nullcontext()
    with ensemble:
        for index in range(math.ceil(n_events / per_draw)):
            n = min(per_draw, n_events - index * per_draw)
            chunk_seed = derive_seed(seed, "generate", index)
            features = model.sampler.sample(n * draws, steps=sample_steps, solver=solver,
                                            generator=torch_generator(chunk_seed, device))
            rng = np.random.default_rng(derive_seed(chunk_seed, "inverse"))
            events = model.preprocessor.inverse(features.float().cpu().numpy(), rng)
            yield Chunk(events, np.repeat(np.arange(draws, dtype=np.int32), n))


def generate_events(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                    sample_steps: int | None = None, solver: str | None = None, draws: int = 1
                    ) -> tuple[Chunk, GenerationStats]:
    """Generate ``n_events`` per ensemble member into memory, with timing."""
    start = time.perf_counter()
    chunks = list(event_chunks(model, n_events, batch_size, seed, sample_steps, solver, draws))
    _synchronize(model.sampler.device)
    seconds = time.perf_counter() - start
    result = Chunk(np.concatenate([c.events for c in chunks]), np.concatenate([c.draw for c in chunks]))
    return result, GenerationStats(len(result.draw), seconds,
                                   model.sampler.evaluations_per_event(sample_steps, solver))


def generate(run_dir: str | Path, config: GenerateConfig, progress: bool = True) -> GenerationStats:
    """Generate ``config.events`` events (per ensemble member) of a trained run into ``config.out``
    (.root or .npz); a ``draw`` branch numbers the members when ``config.draws > 1``."""
    check_output_path(config.out, SUFFIXES)
    model = TrainedModel.load(run_dir, config.device)
    model.sampler.evaluations_per_event(config.sample_steps, config.solver)  # validates the settings
    check_draws(model, config.draws)
    names = model.process.quantities
    start = time.perf_counter()
    total = config.events * config.draws
    # One background thread writes chunk i while chunk i + 1 is generated; at most one write is
    # in flight, and a failed write stops the loop (the writer then removes its temporary file).
    with open_writer(config.out) as writer, ThreadPoolExecutor(max_workers=1) as disk, \
            tqdm(total=total, disable=not progress, unit="event", unit_scale=True, desc="generating") as bar:
        pending: Future | None = None
        for chunk in event_chunks(model, config.events, config.batch_size, config.seed,
                                  config.sample_steps, config.solver, config.draws):
            branches = {name: chunk.events[:, i].astype(np.float32) for i, name in enumerate(names)}
            if config.draws > 1:
                branches["draw"] = chunk.draw
            if pending is not None:
                pending.result()
            pending = disk.submit(writer.write, branches)
            bar.update(len(chunk.draw))
        if pending is not None:
            pending.result()
    return GenerationStats(total, time.perf_counter() - start,
                           model.sampler.evaluations_per_event(config.sample_steps, config.solver))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
