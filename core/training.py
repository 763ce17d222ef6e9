"""The training loop: device-agnostic, AMP on GPU, EMA weights, atomic checkpoints, resume.

A run is reproducible step by step: the batch and the noise of step ``k`` are drawn from
streams seeded by ``(seed, k)``, so a run resumed from a checkpoint ends where an
uninterrupted run with the same seed ends.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from bayesgen.bayes import kl_divergence
from bayesgen.core import distributed
from bayesgen.core.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from bayesgen.core.conditions import ConditionDistribution
from bayesgen.core.config import TrainConfig, build
from bayesgen.core.device import resolve_device
from bayesgen.core.errors import ConfigError, DataError, RunError
from bayesgen.core.io import write_json
from bayesgen.core.lock import RunLock
from bayesgen.core.model import build_process, build_sampler
from bayesgen.core.preprocessing import Preprocessor, check_finite, feature_channels, feature_range
from bayesgen.core.process import Process
from bayesgen.core.registry import get_backbone, get_sampler
from bayesgen.core.seeding import derive_seed, torch_generator

RESUMABLE_CHANGES = {"steps", "checkpoint_every", "device", "threads", "distributed", "out", "resume"}


class ExponentialMovingAverage:
    """``θ̄ ← d θ̄ + (1 − d) θ`` with warm-up ``d = min(decay, (1 + k)/(10 + k))`` at step ``k``."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        ema = list(self.model.state_dict().values())
        live = list(model.state_dict().values())
        floats = [(e, p) for e, p in zip(ema, live) if e.is_floating_point()]
        torch._foreach_lerp_([e for e, _ in floats], [p for _, p in floats], 1.0 - decay)


class BatchStream:
    """Shuffled mini-batches, a fresh permutation per epoch, addressable by step number."""

    def __init__(self, n_events: int, batch_size: int, seed: int, device: torch.device):
        if batch_size > n_events:
            raise ConfigError(f"--batch-size {batch_size} exceeds the {n_events} training events; "
                              f"use --batch-size {n_events} or less")
        self.n_events, self.batch_size, self.seed, self.device = n_events, batch_size, seed, device
        self.steps_per_epoch = n_events // batch_size
        self._epoch, self._permutation = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch_generator(derive_seed(self.seed, "epoch", epoch))
            self._epoch = epoch
            self._permutation = torch.randperm(self.n_events, generator=generator).to(self.device)
        start = position * self.batch_size
        return self._permutation[start:start + self.batch_size]


class WallTimeEstimate:
    """The expected wall time of a run, from the steps after its first (which pays for warm-up),
    once they have taken ``min_seconds`` or numbered ``max_steps``."""

    def __init__(self, start: int, steps: int, device: torch.device, min_seconds: float = 2.0,
                 max_steps: int = 20):
        self.start, self.steps, self.device = start, steps, device
        self.min_seconds, self.max_steps = min_seconds, max_steps
        self.tick: float | None = None

    def update(self, done: int) -> str | None:
        """After step ``done``: the line to print, once, or None."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now, timed = time.perf_counter(), done - self.start - 1
        if self.tick is None:
            self.tick = now
            return None
        elapsed = now - self.tick
        if done >= self.steps or (elapsed < self.min_seconds and timed < self.max_steps):
            return None
        per_step, remaining = elapsed / timed, self.steps - done
        return (f"expected wall time: {duration(per_step * remaining)} for the remaining {remaining:,} steps "
                f"({per_step:.3g} s/step on {self.device.type}, timed over {timed} steps)")


def duration(seconds: float) -> str:
    """``3725`` → ``1 h 2 min``; ``42.5`` → ``43 s``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``steps``."""
    warmup = min(config.warmup_steps, config.steps // 10)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, config.steps - warmup)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _load_resume_state(config: TrainConfig) -> tuple[TrainConfig, dict]:
    """The saved run's config, with ``steps`` (to extend a run), ``device`` and ``out`` from
    ``config``; any other option set away from its default must match the saved run."""
    state = load_checkpoint(config.out)
    saved = TrainConfig(**state["config"])
    defaults = build(TrainConfig, {"process": config.process, "sampler": config.sampler, "backbone": config.backbone})
    conflicts = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RESUMABLE_CHANGES
                 and getattr(config, f.name) not in (getattr(defaults, f.name), getattr(saved, f.name))]
    if conflicts:
        raise ConfigError(f"cannot resume {config.out} with a different {', '.join(conflicts)}")
    steps = saved.steps if config.steps == defaults.steps else config.steps
    return dataclasses.replace(saved, steps=steps, device=config.device, threads=config.threads,
                               distributed=config.distributed, out=config.out, resume=True), state


def training_events(process: Process, config: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """The training events ``(n, n_quantities)`` of a run and their weights ``(n,)``, drawn
    again from the run's seed (a file-based process returns the same entries)."""
    return process.sample_with_weights(config.events, seed=derive_seed(config.seed, "train-data"))


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train the configured model into ``config.out``, holding the run directory's lock
    (:class:`RunLock`, taken by the main rank); return the run directory."""
    if config.resume and not Path(config.out).is_dir():
        raise RunError(f"run directory not found: {config.out} (to start a new run there, leave out --resume)")
    ranks, device = distributed.start(config.device) if config.distributed else (
        distributed.Ranks(), resolve_device(config.device))
    with RunLock(config.out) if ranks.is_main else nullcontext():
        return _train_locked(config, ranks, device, progress)


def _train_locked(config: TrainConfig, ranks: distributed.Ranks, device: torch.device, progress: bool) -> Path:
    run_dir = Path(config.out)
    state = None
    if config.resume:
        config, state = _load_resume_state(config)
    elif checkpoint_path(run_dir).exists():
        raise RunError(f"{run_dir} already holds a trained run; pass --resume to continue it "
                       "or choose another --out")
    get_backbone(config.backbone), get_sampler(config.sampler)  # unknown names fail before any work
    stored_options = state.get("process_options") if state else None  # the run's own, on resume
    process = build_process(config, stored_options)

    events, weights = training_events(process, config)
    if len(events) == 0:
        raise DataError(f"the {config.process} process gave no training events")
    process_options = stored_options or process.portable_options(config.process_options)
    check_finite(weights[:, None], ("event weight",), "training events")
    if np.all(weights == weights[0]):
        weights = None  # unweighted: plain means everywhere
    preprocessor = Preprocessor.fit(process, events, weights)
    standardized = preprocessor.forward(events, np.random.default_rng(derive_seed(config.seed, "absent-features")))
    training_range = feature_range(standardized, feature_channels(process))
    features = torch.from_numpy(standardized).to(device)
    conditions = None
    if process.n_conditions:
        raw_conditions = process.conditions(events)
        conditions = ConditionDistribution.fit(raw_conditions, weights, process.condition_names)
        cond = torch.from_numpy(raw_conditions).float().to(device)
    if weights is not None:  # normalised to mean 1, so the KL / N_train scale is unchanged
        weights = torch.from_numpy(weights / weights.mean()).float().to(device)
    del events

    torch.manual_seed(derive_seed(config.seed, "init"))
    sampler = build_sampler(config, process.n_features, process.n_conditions, process.feature_shape).to(device)
    sampler.set_feature_range(*(torch.from_numpy(bound) for bound in training_range))
    ema = ExponentialMovingAverage(sampler, config.ema_decay)
    optimizer = torch.optim.AdamW(sampler.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: dict[str, list[float]] = {"step": [], "loss": [], "kl": []}
    kl_weight = 1.0 / len(features)  # ELBO per training event: loss + KL / N_train
    start, seconds_before, cpu_before = 0, 0.0, 0.0
    if state is not None:
        sampler.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        history, start, seconds_before = state["history"], state["step"], state["train_seconds"]
        cpu_before = state.get("train_cpu_seconds", 0.0)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = (DistributedDataParallel(sampler, device_ids=[device.index] if device.type == "cuda" else None)
             if config.distributed else sampler)

    def checkpoint(step: int) -> None:
        if not ranks.is_main:
            return
        save_checkpoint(run_dir, {
            "config": dataclasses.asdict(config), "process_options": process_options, "step": step,
            "model": sampler.state_dict(),
            "ema": ema.model.state_dict(), "optimizer": optimizer.state_dict(),
            "preprocessing": preprocessor.state_dict(), "feature_range": sampler.feature_range.cpu(),
            "history": history,
            **({"conditions": conditions.state_dict()} if conditions else {}),
            "train_seconds": seconds_before + time.perf_counter() - loop_start,
            "train_cpu_seconds": cpu_before + time.process_time() - cpu_start})

    batches = BatchStream(len(features), config.batch_size, config.seed, device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext())
    log_every = max(1, min(50, config.steps // 100))
    bar = tqdm(total=config.steps, initial=start, disable=not (progress and ranks.is_main), unit="step",
               mininterval=1.0,
               dynamic_ncols=True, desc=f"{config.sampler}/{config.backbone} on {config.process}")
    running, tick, tick_step = torch.zeros((), device=device), time.perf_counter(), start
    running_kl = torch.zeros((), device=device)
    loop_start, cpu_start = tick, time.process_time()
    estimate = WallTimeEstimate(start, config.steps, device) if progress and ranks.is_main else None
    sampler.train()
    for step in range(start, config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, step)
        # ranks draw their own noise; one process keeps the streams of a single-process run
        generator = torch_generator(derive_seed(config.seed, "noise", step, *(
            [ranks.rank] if config.distributed else [])), device)
        torch.manual_seed(derive_seed(config.seed, "layer-noise", step, ranks.rank))  # variational layers' ε
        with autocast:
            batch = batches.indices(step)[ranks.rank::ranks.world_size]
            loss = model(features[batch], None if conditions is None else cond[batch], generator=generator,
                         weights=None if weights is None else weights[batch])
        running += loss.detach()
        if config.bayesian:
            kl = kl_divergence(sampler) * kl_weight
            running_kl += kl.detach()
            loss = loss + kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(sampler.parameters(), 1.0)
        optimizer.step()
        ema.update(sampler, step)
        done = step + 1
        if done % log_every == 0 or done == config.steps:
            mean_loss = running.item() / (done - tick_step)
            if not np.isfinite(mean_loss):
                raise RunError(f"training diverged at step {done} (loss {mean_loss}); lower --lr "
                               f"or resume from the last checkpoint in {run_dir}")
            now = time.perf_counter()
            rate = (done - tick_step) * config.batch_size / (now - tick)
            history["step"].append(done)
            history["loss"].append(mean_loss)
            history["kl"].append(running_kl.item() / (done - tick_step))
            postfix = {"loss": f"{mean_loss:.4f}", "events_per_s": f"{rate:,.0f}"}
            if config.bayesian:
                postfix["kl_per_event"] = f"{history['kl'][-1]:.4f}"
            bar.set_postfix(postfix, refresh=False)
            running.zero_()
            running_kl.zero_()
            tick, tick_step = now, done
        bar.update(1)
        if estimate is not None and (line := estimate.update(done)):
            bar.write(line)
            estimate = None
        if done % config.checkpoint_every == 0 or done == config.steps:
            checkpoint(done)
    bar.close()
    if start >= config.steps:
        checkpoint(start)
    if ranks.is_main:
        write_json(run_dir / "config.json", dataclasses.asdict(config))
    if config.distributed:
        distributed.check_in_sync(sampler)
        distributed.barrier()
        distributed.stop()
    return run_dir
