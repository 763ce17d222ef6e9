"""Training a run, in steps that read top to bottom in :func:`train`: :func:`run_settings` (a
new run, or the saved one to resume), :func:`prepare_data` (training events → standardised
features on the device), :meth:`TrainingState.start` (the model, the EMA of its weights, the
optimiser), :func:`run_steps` (the loop of :func:`train_step`, with the loss history, the progress
bar and the checkpoints), then ``config.json``. Device-agnostic, bf16 autocast on CUDA, atomic
checkpoints.

A run is reproducible step by step: the batch and the noise of step ``k`` are drawn from
streams seeded by ``(seed, k)``, so a run resumed from a checkpoint ends where an
uninterrupted run with the same seed ends.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from bayesgen.bayes import kl_divergence, width_parameters
from bayesgen.core.errors import ConfigError, DataError, RunError
from bayesgen.core.process import Process
from bayesgen.core.registry import get_backbone, get_sampler
from bayesgen.core.sampler import Sampler
from bayesgen.core.seeding import derive_seed, torch_generator
from bayesgen.engine import distributed
from bayesgen.engine.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from bayesgen.engine.conditions import ConditionDistribution
from bayesgen.engine.config import TrainConfig, build
from bayesgen.engine.device import resolve_device
from bayesgen.engine.io import write_json
from bayesgen.engine.lock import RunLock
from bayesgen.engine.model import build_model, build_process
from bayesgen.engine.preprocessing import Preprocessor, check_finite, feature_channels, feature_range

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
    if "laplace" in state:
        raise RunError(f"{config.out} holds a Laplace posterior made by `bayesgen laplace`, not a training run; "
                       f"train its source run {state['laplace']['source']} instead")
    saved = TrainConfig(**state["config"])
    defaults = build(TrainConfig, {"process": config.process, "sampler": config.sampler, "backbone": config.backbone})
    conflicts = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RESUMABLE_CHANGES
                 and getattr(config, f.name) not in (getattr(defaults, f.name), getattr(saved, f.name))]
    if conflicts:
        raise ConfigError(f"cannot resume {config.out} with a different {', '.join(conflicts)}")
    steps = saved.steps if config.steps == defaults.steps else config.steps
    return dataclasses.replace(saved, steps=steps, device=config.device, threads=config.threads,
                               distributed=config.distributed, out=config.out, resume=True), state


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
    """The steps of a run, in order: its settings, the data, the model, the loop, the files."""
    config, saved = run_settings(config)
    data = prepare_data(config, saved.get("process_options") if saved else None, device)
    state = TrainingState.start(config, data, device, saved)
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)

    def checkpoint(step: int) -> None:
        if ranks.is_main:
            save_checkpoint(run_dir, state.checkpoint(config, data, step))

    run_steps(config, data, state, ranks, device, progress, checkpoint)
    if ranks.is_main:
        write_json(run_dir / "config.json", dataclasses.asdict(config))
    if config.distributed:
        distributed.check_in_sync(state.sampler)
        distributed.barrier()
        distributed.stop()
    return run_dir


def run_settings(config: TrainConfig) -> tuple[TrainConfig, dict | None]:
    """The run's settings and, on ``--resume``, its saved state (see :func:`_load_resume_state`);
    a new run must not overwrite a trained one, and unknown plugin names fail before any work."""
    state = None
    if config.resume:
        config, state = _load_resume_state(config)
    elif checkpoint_path(config.out).exists():
        raise RunError(f"{config.out} already holds a trained run; pass --resume to continue it "
                       "or choose another --out")
    if config.bayes_options.get("posterior", "mean_field") != "mean_field":
        raise ConfigError(f"bayes_options posterior {config.bayes_options['posterior']!r} is made from a trained run "
                          "by `bayesgen laplace`, not trained; train with the mean_field posterior")
    get_backbone(config.backbone), get_sampler(config.sampler)
    return config, state


@dataclass
class TrainingData:
    """The standardised training sample on the device, and what the run stores to invert it.

    ``features (n, n_features)``; ``cond (n, n_conditions)`` and ``conditions`` (their
    frequencies) for a conditional process, else ``None``; ``weights (n,)`` normalised to mean 1,
    or ``None`` when every event weighs the same; ``feature_range`` the standardised features'
    ``(low, high)``, each ``(n_features,)``."""

    process: Process
    process_options: dict
    preprocessor: Preprocessor
    features: torch.Tensor
    cond: torch.Tensor | None
    weights: torch.Tensor | None
    conditions: ConditionDistribution | None
    raw_conditions: np.ndarray | None
    feature_range: tuple[np.ndarray, np.ndarray]


def training_events(process: Process, config: TrainConfig) -> tuple[np.ndarray, np.ndarray | None]:
    """The training events ``(n, n_quantities)`` of a run and their weights ``(n,)``, drawn
    again from the run's seed (a file-based process returns the same entries); the weights are
    None when all are equal (unweighted: plain means everywhere), a non-finite one is a
    :class:`DataError`."""
    events, weights = process.sample_with_weights(config.events, seed=derive_seed(config.seed, "train-data"))
    check_finite(weights[:, None], ("event weight",), "training events")
    return events, None if len(weights) and np.all(weights == weights[0]) else weights


def prepare_data(config: TrainConfig, stored_options: dict | None, device: torch.device) -> TrainingData:
    """Draw the training events (built from the run's own ``stored_options`` on resume), fit
    the preprocessing and move the standardised features, conditions and weights to ``device``."""
    process = build_process(config, stored_options)
    events, weights = training_events(process, config)
    if len(events) == 0:
        raise DataError(f"the {config.process} process gave no training events")
    preprocessor = Preprocessor.fit(process, events, weights)
    standardized = preprocessor.forward(events, np.random.default_rng(derive_seed(config.seed, "absent-features")))
    raw_conditions = process.conditions(events) if process.n_conditions else None
    return TrainingData(
        process, stored_options or process.portable_options(config.process_options), preprocessor,
        torch.from_numpy(standardized).to(device),
        None if raw_conditions is None else torch.from_numpy(raw_conditions).float().to(device),
        None if weights is None else torch.from_numpy(weights / weights.mean()).float().to(device),
        None if raw_conditions is None else ConditionDistribution.fit(raw_conditions, weights,
                                                                     process.condition_names),
        raw_conditions, feature_range(standardized, feature_channels(process)))


@dataclass
class TrainingState:
    """What changes as a run trains: the model, the EMA of its weights, the optimiser, the loss
    history (``step``, ``loss``, ``kl`` per logged interval), the steps done and the seconds
    trained before this session; a checkpoint holds all of it."""

    sampler: Sampler
    ema: ExponentialMovingAverage
    optimizer: torch.optim.Optimizer
    history: dict[str, list[float]]
    step: int = 0
    seconds_before: float = 0.0
    cpu_seconds_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    cpu_started: float = field(default_factory=time.process_time)

    @classmethod
    def start(cls, config: TrainConfig, data: TrainingData, device: torch.device,
              saved: dict | None = None) -> "TrainingState":
        """Build the model (seeded), its EMA and optimiser; continue from ``saved`` when given."""
        torch.manual_seed(derive_seed(config.seed, "init"))
        sampler = build_model(config, data.process, data.raw_conditions).to(device)
        sampler.set_feature_range(*(torch.from_numpy(bound) for bound in data.feature_range))
        state = cls(sampler, ExponentialMovingAverage(sampler, config.ema_decay), make_optimizer(config, sampler),
                    {"step": [], "loss": [], "kl": []})
        if saved is not None:
            sampler.load_state_dict(saved["model"])
            state.ema.model.load_state_dict(saved["ema"])
            if len(saved["optimizer"]["param_groups"]) != len(state.optimizer.param_groups):
                raise RunError(f"{config.out}: its optimiser state holds the posterior widths with the weights "
                               "(saved before they had their own learning rate, width_lr_scale); it cannot resume, "
                               "start a new run")
            state.optimizer.load_state_dict(saved["optimizer"])
            state.history, state.step, state.seconds_before = saved["history"], saved["step"], saved["train_seconds"]
            state.cpu_seconds_before = saved.get("train_cpu_seconds", 0.0)
        return state

    def checkpoint(self, config: TrainConfig, data: TrainingData, step: int) -> dict:
        """The checkpoint after ``step`` steps (see :mod:`bayesgen.engine.checkpoint`)."""
        return {
            "config": dataclasses.asdict(config), "process_options": data.process_options, "step": step,
            "model": self.sampler.state_dict(),
            "ema": self.ema.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "preprocessing": data.preprocessor.state_dict(), "feature_range": self.sampler.feature_range.cpu(),
            "history": self.history,
            **({"conditions": data.conditions.state_dict()} if data.conditions else {}),
            "train_seconds": self.seconds_before + time.perf_counter() - self.started,
            "train_cpu_seconds": self.cpu_seconds_before + time.process_time() - self.cpu_started}


def make_optimizer(config: TrainConfig, sampler: torch.nn.Module) -> torch.optim.AdamW:
    """AdamW over the sampler's parameters; a Bayesian network's posterior widths form a second
    group, never decayed and stepped at ``width_lr_scale`` × the learning rate (see
    :func:`set_learning_rate`)."""
    widths = width_parameters(sampler) if config.bayesian else []
    chosen = {id(p) for p in widths}
    groups = [{"params": [p for p in sampler.parameters() if id(p) not in chosen]}]
    if widths:
        groups.append({"params": widths, "weight_decay": 0.0})
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, config: TrainConfig, step: int) -> None:
    """The groups' learning rates at ``step``: :func:`learning_rate` for the weights, times
    ``width_lr_scale`` for the posterior widths (the groups of :func:`make_optimizer`, in order;
    the scale is the config's, not stored in the optimiser's state)."""
    for group, scale in zip(optimizer.param_groups, (1.0, config.width_lr_scale)):
        group["lr"] = learning_rate(config, step) * scale


class LossLog:
    """Running sums of the loss and the KL term since the last logged step, on the device (no
    synchronisation per step); :meth:`log` turns them into a history entry."""

    def __init__(self, history: dict[str, list[float]], start: int, device: torch.device):
        self.history, self.device = history, device
        self.loss, self.kl = torch.zeros((), device=device), torch.zeros((), device=device)
        self.tick, self.tick_step = time.perf_counter(), start

    def add(self, loss: torch.Tensor, kl: torch.Tensor | None) -> None:
        self.loss += loss.detach()
        if kl is not None:
            self.kl += kl.detach()

    def log(self, done: int, batch_size: int) -> float:
        """Append the mean loss and KL per step since the last call to the history; return the
        training speed in events per second over those steps."""
        steps = done - self.tick_step
        now = time.perf_counter()
        self.history["step"].append(done)
        self.history["loss"].append(self.loss.item() / steps)
        self.history["kl"].append(self.kl.item() / steps)
        rate = steps * batch_size / (now - self.tick)
        self.loss.zero_()
        self.kl.zero_()
        self.tick, self.tick_step = now, done
        return rate


def train_step(config: TrainConfig, data: TrainingData, state: TrainingState, model: torch.nn.Module, step: int,
               batch: torch.Tensor, ranks: distributed.Ranks, device: torch.device,
               autocast: AbstractContextManager) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One optimiser step on the rows ``batch`` of the training data: the loss (plus the sampler's
    likelihood scale × KL / N_train for a Bayesian model, the negative ELBO per training event in
    the loss's units), clipped gradients, AdamW, the EMA;
    return the loss and the KL term."""
    set_learning_rate(state.optimizer, config, step)
    # ranks draw their own noise; one process keeps the streams of a single-process run
    generator = torch_generator(derive_seed(config.seed, "noise", step, *(
        [ranks.rank] if config.distributed else [])), device)
    torch.manual_seed(derive_seed(config.seed, "layer-noise", step, ranks.rank))  # variational layers' ε
    with autocast:
        loss = model(data.features[batch], None if data.cond is None else data.cond[batch], generator=generator,
                     weights=None if data.weights is None else data.weights[batch])
    kl = (kl_divergence(state.sampler) * (state.sampler.likelihood_scale() / len(data.features))
          if config.bayesian else None)
    state.optimizer.zero_grad(set_to_none=True)
    (loss if kl is None else loss + kl).backward()
    torch.nn.utils.clip_grad_norm_(state.sampler.parameters(), 1.0)
    state.optimizer.step()
    state.ema.update(state.sampler, step)
    return loss, kl


def run_steps(config: TrainConfig, data: TrainingData, state: TrainingState, ranks: distributed.Ranks,
              device: torch.device, progress: bool, checkpoint: Callable[[int], None]) -> None:
    """Train from ``state.step`` to ``config.steps``, logging the loss to the history and a
    progress bar, printing the expected wall time once, and calling ``checkpoint(step)`` every
    ``checkpoint_every`` steps and at the end (also when there is nothing left to train)."""
    start = state.step
    model = (DistributedDataParallel(state.sampler, device_ids=[device.index] if device.type == "cuda" else None)
             if config.distributed else state.sampler)
    batches = BatchStream(len(data.features), config.batch_size, config.seed, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    log_every = max(1, min(50, config.steps // 100))
    bar = tqdm(total=config.steps, initial=start, disable=not (progress and ranks.is_main), unit="step",
               mininterval=1.0, dynamic_ncols=True, desc=f"{config.sampler}/{config.backbone} on {config.process}")
    losses = LossLog(state.history, start, device)
    state.started = losses.tick
    estimate = WallTimeEstimate(start, config.steps, device) if progress and ranks.is_main else None
    state.sampler.train()
    for step in range(start, config.steps):
        batch = batches.indices(step)[ranks.rank::ranks.world_size]
        losses.add(*train_step(config, data, state, model, step, batch, ranks, device, autocast))
        done = step + 1
        if done % log_every == 0 or done == config.steps:
            rate = losses.log(done, config.batch_size)
            if not np.isfinite(state.history["loss"][-1]):
                raise RunError(f"training diverged at step {done} (loss {state.history['loss'][-1]}); lower --lr "
                               f"or resume from the last checkpoint in {config.out}")
            postfix = {"loss": f"{state.history['loss'][-1]:.4f}", "events_per_s": f"{rate:,.0f}"}
            if config.bayesian:
                postfix["kl_per_event"] = f"{state.history['kl'][-1]:.4f}"
            bar.set_postfix(postfix, refresh=False)
        bar.update(1)
        if estimate is not None and (line := estimate.update(done)):
            bar.write(line)
            estimate = None
        if done % config.checkpoint_every == 0 or done == config.steps:
            checkpoint(done)
    bar.close()
    if start >= config.steps:
        checkpoint(start)
