"""Generation: batched, seeded, streamed to disk in chunks.

Chunk ``i`` draws its noise from the stream ``(seed, "generate", i)``, so a file's content
depends on the seed and the batch size only, not on the run's history; pass ``batch_size``
for files that are identical across devices (by default it follows the GPU's free memory).
A Bayesian model generates ``draws`` ensemble members at once: each chunk holds the same number
of events from every member, evaluated as one batch (see :func:`bayesgen.bayes.weight_draws`);
with ``draws = 1`` it uses the posterior means.

Every event lies in the process's support (:meth:`bayesgen.core.process.Process.support`):
one the model draws outside it is drawn again, from the same ensemble member and with the same
condition (seeded from its chunk's stream), unless ``keep_unphysical`` keeps it and flags it in
a branch ``unphysical``. Either way the count is returned (:class:`GenerationStats`).
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import uproot
from tqdm.auto import tqdm

from bayesgen.bayes import is_bayesian, weight_draws
from bayesgen.core.errors import ConfigError, RunError
from bayesgen.core.process import Process
from bayesgen.core.seeding import derive_seed, torch_generator
from bayesgen.engine import distributed
from bayesgen.engine.acceleration import (HostCopy, auto_batch_size, autocast, compile_networks,
                                          resolved_precision)
from bayesgen.engine.config import GenerateConfig
from bayesgen.engine.device import resolve_device
from bayesgen.engine.io import SUFFIXES, TREE_NAME, check_output_path, open_writer
from bayesgen.engine.model import TrainedModel
from bayesgen.engine.progress import progress_bar


@dataclass
class GenerationStats:
    """What one generation call did; ``n_events`` counts every ensemble member's events."""

    n_events: int
    seconds: float
    evaluations_per_event: int | None
    n_out_of_support: int = 0  #: events the model drew outside the support (drawn again, or flagged)

    @property
    def events_per_second(self) -> float:
        return self.n_events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def out_of_support_fraction(self) -> float:
        return self.n_out_of_support / self.n_events if self.n_events else 0.0

    def describe_out_of_support(self, kept: bool) -> str:
        """One line saying how many generated events lay outside the process's support."""
        return (f"{self.out_of_support_fraction:.2%} of the generated events ({self.n_out_of_support:,} of "
                f"{self.n_events:,}) lay outside the process's support (physical limits and acceptance); "
                + ("kept" if kept else "drawn again"))


@dataclass
class Chunk:
    """Generated events ``(n, n_quantities)`` in physical units, their ensemble member ``(n,)``
    and which of them the model first drew outside the support ``(n,)`` (drawn again, or kept)."""

    events: np.ndarray
    draw: np.ndarray
    outside: np.ndarray | None = None


def check_draws(model: TrainedModel, draws: int) -> None:
    if draws > 1 and not is_bayesian(model.sampler):
        raise ConfigError(f"--draws {draws} needs a Bayesian run (train with --bayesian); "
                          f"{model.config.out} is deterministic")


def chunk_sizes(n_events: int, batch_size: int, draws: int = 1) -> list[int]:
    """Events per ensemble member in each chunk: about ``batch_size`` rows per chunk in all."""
    per_draw = max(1, batch_size // draws)
    return [min(per_draw, n_events - start) for start in range(0, n_events, per_draw)]


Weigh = Callable[[Process, np.ndarray], np.ndarray]  #: (process, events (n, n_quantities)) → weights (n,)

MIN_IN_SUPPORT = 0.05  #: a chunk with fewer of its events in the support stops generation
MAX_ROUNDS = 20        #: rounds of drawing again per chunk before generation gives up
MAX_COPIES = 50        #: candidates per missing event and round, at most


def event_chunks(model: TrainedModel, n_events: int, batch_size: int, seed: int,
                 sample_steps: int | None = None, solver: str | None = None, draws: int = 1,
                 shard: tuple[int, int] = (0, 1), precision: str = "fp32",
                 keep_unphysical: bool = False) -> Iterator[Chunk]:
    """Yield chunks of ``n_events`` events per ensemble member, about ``batch_size`` rows each;
    with ``shard = (rank, world_size)`` only the chunks ``rank, rank + world_size, …``. Events
    outside the process's support are drawn again (see :func:`replace_outside`), or kept with
    ``keep_unphysical``.

    Chunk ``i + 1`` is queued on the device before chunk ``i`` is brought back and turned into
    events, so on a GPU the host's work and the copy (pinned, asynchronous) overlap the compute."""
    check_draws(model, draws)
    device = model.sampler.device
    rank, world_size = shard
    ensemble = weight_draws(model.sampler, draws, derive_seed(seed, "ensemble")) if draws > 1 else nullcontext()

    def draw_features(rows: int, conditions: np.ndarray | None, stream: int) -> HostCopy:
        cond = None if conditions is None else torch.from_numpy(conditions).float().to(device)
        return HostCopy.start(model.sampler.sample(rows, cond, steps=sample_steps, solver=solver,
                                                   generator=torch_generator(stream, device)))

    def draw_events(rows: int, conditions: np.ndarray | None, stream: int) -> np.ndarray:
        return _to_events(model, draw_features(rows, conditions, stream), conditions, stream)

    def finish(features: HostCopy, n: int, conditions: np.ndarray | None, chunk_seed: int) -> Chunk:
        events = _to_events(model, features, conditions, chunk_seed)
        outside = ~model.process.support(events)
        if outside.any() and not keep_unphysical:
            replace_outside(events, outside, conditions, draws, draw_events, model.process.support,
                            chunk_seed, f"the {model.config.sampler} model of {model.config.process}")
        return Chunk(events, np.repeat(np.arange(draws, dtype=np.int32), n), outside)

    pending: tuple[HostCopy, int, np.ndarray | None, int] | None = None
    with ensemble, torch.no_grad(), autocast(device, precision):
        for index, n in enumerate(chunk_sizes(n_events, batch_size, draws)):
            if index % world_size != rank:
                continue
            chunk_seed = derive_seed(seed, "generate", index)
            conditions = None
            if model.conditions is not None:  # every ensemble member sees the same conditions
                conditions = np.tile(model.conditions.sample(
                    n, np.random.default_rng(derive_seed(chunk_seed, "conditions"))), (draws, 1))
            queued = (draw_features(n * draws, conditions, chunk_seed), n, conditions, chunk_seed)
            if pending is not None:
                yield finish(*pending)
            pending = queued
        if pending is not None:  # inside the ensemble: drawing again needs the members' weights
            yield finish(*pending)


def _to_events(model: TrainedModel, features: HostCopy, conditions: np.ndarray | None, stream: int) -> np.ndarray:
    """Events of the features, rounded to the float32 the files hold, so that the support is
    checked on the values written."""
    rng = np.random.default_rng(derive_seed(stream, "inverse"))
    with np.errstate(over="ignore"):
        return model.preprocessor.inverse(features.numpy(), rng, conditions).astype(np.float32).astype(np.float64)


def replace_outside(events: np.ndarray, outside: np.ndarray, conditions: np.ndarray | None, draws: int,
                    draw_events: Callable[[int, np.ndarray | None, int], np.ndarray],
                    support: Callable[[np.ndarray], np.ndarray], seed: int, what: str) -> None:
    """Replace, in place, the rows of ``events`` (``draws`` consecutive blocks, one per ensemble
    member) marked ``outside`` by events in the ``support``, of the same member and condition.

    Each round draws, per missing row, as many candidates as the chunk's share in the support
    suggests (``draw_events(rows, conditions, stream)`` with the stream ``(seed, "regenerate",
    round)``; rows in member-major blocks, as the ensemble evaluates them) and keeps the first in
    the support. :class:`RunError` when fewer than MIN_IN_SUPPORT of the chunk's events are in
    the support, or rows are still missing after MAX_ROUNDS rounds."""
    n = len(events) // draws
    in_support = 1.0 - float(outside.mean())

    def failure(detail: str) -> RunError:
        return RunError(f"{what} drew {outside.mean():.1%} of a chunk's events outside the process's support "
                        f"(physical limits and acceptance){detail}: it needs more training or more "
                        "--sample-steps; --keep-unphysical writes them with a flag instead")

    if in_support < MIN_IN_SUPPORT:
        raise failure("")
    copies = min(MAX_COPIES, math.ceil(1.5 / in_support))
    missing = outside.copy()
    for attempt in range(MAX_ROUNDS):
        blocks = [m * n + np.flatnonzero(missing[m * n:(m + 1) * n]) for m in range(draws)]
        width = max(len(block) for block in blocks)
        rows = np.repeat(np.concatenate([np.resize(block, width) if len(block) else np.full(width, m * n)
                                         for m, block in enumerate(blocks)]), copies)
        candidates = draw_events(len(rows), None if conditions is None else conditions[rows],
                                 derive_seed(seed, "regenerate", attempt))
        good = np.flatnonzero(missing[rows] & support(candidates))
        targets, first = np.unique(rows[good], return_index=True)
        events[targets] = candidates[good[first]]
        missing[targets] = False
        if not missing.any():
            return
    raise failure(f", and {int(missing.sum()):,} stayed outside in {MAX_ROUNDS} rounds of drawing again")


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
                    precision: str = "fp32", keep_unphysical: bool = False,
                    progress: bool = False) -> tuple[Chunk, GenerationStats]:
    """Generate ``n_events`` per ensemble member into memory, with timing and the count of events
    the model drew outside the process's support (drawn again, or kept with ``keep_unphysical``);
    with ``progress``, a bar on a terminal (one update per chunk)."""
    batch_size = resolve_batch_size(model, batch_size, draws, precision, sample_steps, solver)
    start = time.perf_counter()
    chunks = []
    with progress_bar(progress, total=n_events * draws, unit="event", unit_scale=True, desc="generating") as bar:
        for chunk in event_chunks(model, n_events, batch_size, seed, sample_steps, solver, draws,
                                  precision=precision, keep_unphysical=keep_unphysical):
            chunks.append(chunk)
            bar.update(len(chunk.draw))
    _synchronize(model.sampler.device)
    seconds = time.perf_counter() - start
    result = Chunk(*(np.concatenate([getattr(c, name) for c in chunks]) for name in ("events", "draw", "outside")))
    return result, GenerationStats(len(result.draw), seconds, model.sampler.evaluations_per_event(sample_steps, solver),
                                   int(result.outside.sum()))


def write_chunks(path: Path, chunks: Iterator[Chunk], names: tuple[str, ...], draws: int, bar: tqdm,
                 flag_unphysical: bool = False, weigh: Callable[[np.ndarray], np.ndarray] | None = None) -> int:
    """Stream chunks into one event file, with a branch ``unphysical`` (1: outside the support)
    when ``flag_unphysical`` and a branch ``weight`` from ``weigh(events)`` when given; return
    how many events the model drew outside the support. A background thread writes chunk i while
    chunk i + 1 is generated (at most one write in flight; a failed write stops the loop and the
    writer removes its temporary file)."""
    n_outside = 0
    with open_writer(path) as writer, ThreadPoolExecutor(max_workers=1) as disk:
        pending: Future | None = None
        for chunk in chunks:
            branches = {name: chunk.events[:, i].astype(np.float32) for i, name in enumerate(names)}
            if draws > 1:
                branches["draw"] = chunk.draw
            if flag_unphysical:
                branches["unphysical"] = chunk.outside.astype(np.uint8)
            if weigh is not None:
                branches["weight"] = weigh(chunk.events).astype(np.float32)
            n_outside += 0 if chunk.outside is None else int(chunk.outside.sum())
            if pending is not None:
                pending.result()
            pending = disk.submit(writer.write, branches)
            bar.update(len(chunk.draw))
        if pending is not None:
            pending.result()
    return n_outside


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


def generate(run_dir: str | Path, config: GenerateConfig, progress: bool = True,
             weigh: Weigh | None = None) -> GenerationStats:
    """Generate ``config.events`` events (per ensemble member) of a trained run into ``config.out``
    (.root or .npz); a ``draw`` branch numbers the members when ``config.draws > 1``, an
    ``unphysical`` branch flags events outside the support with ``config.keep_unphysical``, and a
    ``weight`` branch holds ``weigh(process, events)`` when given (the app layer passes the
    classifier weights of ``config.reweight``). With
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
                          config.solver, config.draws, shard=(ranks.rank, ranks.world_size), precision=precision,
                          keep_unphysical=config.keep_unphysical)
    target = part_path(out, ranks.rank, ranks.world_size) if config.distributed else out
    with tqdm(total=total // ranks.world_size, disable=not (progress and ranks.is_main), unit="event",
              unit_scale=True, desc="generating") as bar:
        n_outside = write_chunks(target, chunks, model.process.quantities, config.draws, bar, config.keep_unphysical,
                                 None if weigh is None else functools.partial(weigh, model.process))
    if config.distributed:
        n_outside = distributed.total(n_outside, device)
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
                           model.sampler.evaluations_per_event(config.sample_steps, config.solver), n_outside)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
