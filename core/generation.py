"""Generation: batched, seeded, streamed to disk in chunks.

Chunk ``i`` draws its noise from the stream ``(seed, "generate", i)``, so a file's content
depends on the seed and the batch size only, not on the device's memory or the run's history.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from bayesgen.core.config import GenerateConfig
from bayesgen.core.io import check_output_path, open_writer, SUFFIXES
from bayesgen.core.model import TrainedModel
from bayesgen.core.seeding import derive_seed, torch_generator


@dataclass
class GenerationStats:
    """What one generation call did."""

    n_events: int
    seconds: float
    evaluations_per_event: int

    @property
    def events_per_second(self) -> float:
        return self.n_events / self.seconds if self.seconds > 0 else float("nan")


def event_chunks(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                 sample_steps: int | None = None, solver: str | None = None) -> Iterator[np.ndarray]:
    """Yield event arrays ``(≤ batch_size, n_quantities)`` in physical units, ``n_events`` in all."""
    device = model.sampler.device
    for index in range(math.ceil(n_events / batch_size)):
        n = min(batch_size, n_events - index * batch_size)
        chunk_seed = derive_seed(seed, "generate", index)
        features = model.sampler.sample(n, steps=sample_steps, solver=solver,
                                        generator=torch_generator(chunk_seed, device))
        rng = np.random.default_rng(derive_seed(chunk_seed, "inverse"))
        yield model.preprocessor.inverse(features.float().cpu().numpy(), rng)


def generate_events(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                    sample_steps: int | None = None, solver: str | None = None
                    ) -> tuple[np.ndarray, GenerationStats]:
    """Generate ``n_events`` into memory: the event array and timing."""
    start = time.perf_counter()
    events = np.concatenate(list(event_chunks(model, n_events, batch_size, seed, sample_steps, solver)))
    _synchronize(model.sampler.device)
    stats = GenerationStats(n_events, time.perf_counter() - start,
                            model.sampler.evaluations_per_event(sample_steps, solver))
    return events, stats


def generate(run_dir: str | Path, config: GenerateConfig, progress: bool = True) -> GenerationStats:
    """Generate ``config.events`` events of a trained run into ``config.out`` (.root or .npz)."""
    check_output_path(config.out, SUFFIXES)
    model = TrainedModel.load(run_dir, config.device)
    model.sampler.evaluations_per_event(config.sample_steps, config.solver)  # validates the settings
    names = model.process.quantities
    start = time.perf_counter()
    with open_writer(config.out) as writer, tqdm(total=config.events, disable=not progress, unit="event",
                                                 unit_scale=True, desc="generating") as bar:
        for events in event_chunks(model, config.events, config.batch_size, config.seed,
                                   config.sample_steps, config.solver):
            writer.write({name: events[:, i].astype(np.float32) for i, name in enumerate(names)})
            bar.update(len(events))
    return GenerationStats(config.events, time.perf_counter() - start,
                           model.sampler.evaluations_per_event(config.sample_steps, config.solver))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
