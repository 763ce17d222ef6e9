"""Generation: batched, seeded, streamed to disk in chunks.

Chunk ``i`` draws its noise from the stream ``(seed, "generate", i)``, so a file's content
depends on the seed and the batch size only, not on the run's history; pass ``batch_size``
for files that are identical across devices (by default it follows the GPU's free memory).
A Bayesian model generates ``draws`` ensemble members at once: each chunk holds the same number
of events from every member, evaluated as one batch (see :func:`bayesgen.bayes.weight_draws`);
with ``draws = 1`` it uses the posterior means.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import uproot
from tqdm.auto import tqdm

from bayesgen.bayes import is_bayesian, weight_draws
from bayesgen.core import distributed
from bayesgen.core.acceleration import (HostCopy, auto_batch_size, autocast, compile_networks,
                                        resolved_precision)
from bayesgen.core.config import GenerateConfig
from bayesgen.core.device import resolve_device
from bayesgen.core.errors import ConfigError
from bayesgen.core.io import SUFFIXES, TREE_NAME, check_output_path, open_writer
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


def chunk_sizes(n_events: int, batch_size: int, draws: int = 1) -> list[int]:
    """Events per ensemble member in each chunk: about ``batch_size`` rows per chunk in all."""
    per_draw = max(1, batch_size // draws)
    return [min(per_draw, n_events - start) for start in range(0, n_events, per_draw)]


def event_chunks(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                 sample_steps: int | None = None, solver: str | None = None, draws: int = 1,
                 shard: tuple[int, int] = (0, 1), precision: str = "fp32") -> Iterator[Chunk]:
    """Yield chunks of ``n_events`` events per ensemble member, about ``batch_size`` rows each;
    with ``shard = (rank, world_size)`` only the chunks ``rank, rank + world_size, …``.

    Chunk ``i + 1`` is queued on the device before chunk ``i`` is brought back and turned into
    events, so on a GPU the host's work and the copy (pinned, asynchronous) overlap the compute."""
    check_draws(model, draws)
    device = model.sampler.device
    rank, world_size = shard
    ensemble = weight_draws(model.sampler, draws, derive_seed(seed, "ensemble")) if draws > 1 else nullcontext()
    pending: tuple[HostCopy, int, np.ndarray | None, int] | None = None
    with ensemble, torch.no_grad(), autocast(device, precision):
        for index, n in enumerate(chunk_sizes(n_events, batch_size, draws)):
            if index % world_size != rank:
                continue
            chunk_seed = derive_seed(seed, "generate", index)
            conditions = cond = None
            if model.conditions is not None:  # every ensemble member sees the same conditions
                conditions = np.tile(model.conditions.sample(
                    n, np.random.default_rng(derive_seed(chunk_seed, "conditions"))), (draws, 1))
                cond = torch.from_numpy(conditions).float().to(device)
            features = model.sampler.sample(n * draws, cond, steps=sample_steps, solver=solver,
                                            generator=torch_generator(chunk_seed, device))
            queued = (HostCopy.start(features), n, conditions, chunk_seed)
            if pending is not None:
                yield _to_events(model, *pending, draws)
            pending = queued
    if pending is not None:
        yield _to_events(model, *pending, draws)


def _to_events(model: TrainedModel, features: HostCopy, n: int, conditions: np.ndarray | None,
               chunk_seed: int, draws: int) -> Chunk:
    rng = np.random.default_rng(derive_seed(chunk_seed, "inverse"))
    events = model.preprocessor.inverse(features.numpy(), rng, conditions)
    return Chunk(events, np.repeat(np.arange(draws, dtype=np.int32), n))


def resolve_batch_size(model: TrainedModel, batch_size: int | None, draws: int, precision: str,
                       sample_steps: int | None, solver: str | None) -> int:
    """``batch_size`` if given, else the rows that fit in the free memory of the model's device."""
    if batch_size is not None:
        return batch_size
    cond = None
    if model.conditions is not None:
        cond = torch.from_numpy(model.conditions.values[:1]).float().to(model.sampler.device)

    def probe(rows: int) -> torch.Tensor:
        with weight_draws(model.sampler, draws, 0) if draws > 1 else nullcontext():
            rows -= rows % draws
            return model.sampler.sample(rows, None if cond is None else cond.expand(rows, -1),
                                        steps=sample_steps, solver=solver)

    return auto_batch_size(model.sampler.device, precision, probe)


def generate_events(model: TrainedModel, n_events: int, batch_size: int | None, seed: int,
                    sample_steps: int | None = None, solver: str | None = None, draws: int = 1,
                    precision: str = "fp32") -> tuple[Chunk, GenerationStats]:
    """Generate ``n_events`` per ensemble member into memory, with timing."""
    batch_size = resolve_batch_size(model, batch_size, draws, precision, sample_steps, solver)
    start = time.perf_counter()
    chunks = list(event_chunks(model, n_events, batch_size, seed, sample_steps, solver, draws,
                               precision=precision))
    _synchronize(model.sampler.device)
    seconds = time.perf_counter() - start
    result = Chunk(np.concatenate([c.events for c in chunks]), np.concatenate([c.draw for c in chunks]))
    return result, GenerationStats(len(result.draw), seconds,
                                   model.sampler.evaluations_per_event(sample_steps, solver))


def write_chunks(path: Path, chunks: Iterator[Chunk], names: tuple[str, ...], draws: int, bar: tqdm) -> None:
    """Stream chunks into one event file; a background thread writes chunk i while chunk i + 1 is
    generated (at most one write in flight; a failed write stops the loop and the writer removes
    its temporary file)."""
    with open_writer(path) as writer, ThreadPoolExecutor(max_workers=1) as disk:
        pending: Future | None = None
        for chunk in chunks:
            branches = {name: chunk.events[:, i].astype(np.float32) for i, name in enumerate(names)}
            if draws > 1:
                branches["draw"] = chunk.draw
            if pending is not None:
                pending.result()
            pending = disk.submit(writer.write, branches)
            bar.update(len(chunk.draw))
        if pending is not None:
            pending.result()


def part_path(out: Path, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` writes its share of a sharded generation (always ROOT)."""
    return out.parent / f".{out.stem}.part{rank}of{world_size}.root"


def merge_parts(out: Path, parts: list[Path], rows_per_chunk: list[int]) -> None:
    """Interleave the ranks' parts back into chunk order (chunk ``k`` lies in part ``k mod W``),
    streaming one chunk at a time, so the merged file equals a single-process one."""
    files = [uproot.open(part) for part in parts]
    try:
        trees, offsets = [f[TREE_NAME] for f in files], [0] * len(parts)
        with open_writer(out) as writer:
            for index, rows in enumerate(rows_per_chunk):
                rank = index % len(parts)
                writer.write(trees[rank].arrays(library="np", entry_start=offsets[rank],
                                                entry_stop=offsets[rank] + rows))
                offsets[rank] += rows
    finally:
        for f in files:
            f.close()


def generate(run_dir: str | Path, config: GenerateConfig, progress: bool = True) -> GenerationStats:
    """Generate ``config.events`` events (per ensemble member) of a trained run into ``config.out``
    (.root or .npz); a ``draw`` branch numbers the members when ``config.draws > 1``. With
    ``config.distributed`` (under torchrun) each rank generates every ``world_size``-th chunk
    into its own part, and rank 0 merges the parts into ``config.out``."""
    out = check_output_path(config.out, SUFFIXES)
    ranks, device = distributed.start(config.device) if config.distributed else (
        distributed.Ranks(), resolve_device(config.device))
    model = TrainedModel.load(run_dir, str(device))
    model.sampler.evaluations_per_event(config.sample_steps, config.solver)  # validates the settings
    check_draws(model, config.draws)
    compile_networks(model.sampler, config.compile)
    precision = resolved_precision(device, config.precision)
    batch_size = resolve_batch_size(model, config.batch_size, config.draws, precision, config.sample_steps,
                                    config.solver)
    if config.distributed:  # every rank must cut the same chunks
        batch_size = distributed.smallest(batch_size, device)
    start = time.perf_counter()
    total = config.events * config.draws
    chunks = event_chunks(model, config.events, batch_size, config.seed, config.sample_steps,
                          config.solver, config.draws, shard=(ranks.rank, ranks.world_size), precision=precision)
    target = part_path(out, ranks.rank, ranks.world_size) if config.distributed else out
    with tqdm(total=total // ranks.world_size, disable=not (progress and ranks.is_main), unit="event",
              unit_scale=True, desc="generating") as bar:
        write_chunks(target, chunks, model.process.quantities, config.draws, bar)
    if config.distributed:
        distributed.barrier()
        parts = [part_path(out, rank, ranks.world_size) for rank in range(ranks.world_size)]
        if ranks.is_main:
            try:
                merge_parts(out, parts, [n * config.draws for n in
                                         chunk_sizes(config.events, batch_size, config.draws)])
            finally:
                for part in parts:
                    part.unlink(missing_ok=True)
        distributed.barrier()
        distributed.stop()
    return GenerationStats(total, time.perf_counter() - start,
                           model.sampler.evaluations_per_event(config.sample_steps, config.solver))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
