"""The ``bayesgen`` command line: one vocabulary of flags across subcommands.

Every flag's default lives in :mod:`bayesgen.core.config`; a flag given on the command line
overrides the ``--config`` TOML file, which overrides the defaults.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from typing import Any, Sequence

from bayesgen.core.config import CompareConfig, GenerateConfig, ReweightConfig, TrainConfig, ValidateConfig, read_toml
from bayesgen.core.errors import BayesgenError

# flag → (type or action, help); the same meaning in every subcommand that has it.
FLAGS: dict[str, tuple[Any, str]] = {
    "process": (str, "process plugin name"),
    "sampler": (str, "sampler plugin name"),
    "backbone": (str, "backbone plugin name"),
    "steps": (int, "optimiser steps (compare: each sampler's recipe unless given)"),
    "batch_size": (int, "events per training step, or rows per generation chunk "
                        "(generation default: from free GPU memory, 50,000 on a CPU)"),
    "precision": (str, "auto (bf16 autocast on CUDA, fp32 elsewhere), fp32 or bf16"),
    "compile": (str, "torch.compile the networks: none, default, reduce-overhead (CUDA graphs) or max-autotune"),
    "lr": (float, "peak learning rate (AdamW, cosine decay)"),
    "events": (int, "number of events (training events for train, generated events otherwise)"),
    "seed": (int, "random seed"),
    "device": (str, "auto, cpu, cuda or cuda:N"),
    "threads": (int, "CPU threads of torch (default: torch's, one per core; on a shared machine "
                     "give your share, e.g. 1)"),
    "checkpoint_every": (int, "steps between checkpoints"),
    "ema_decay": (float, "decay d of the weights' exponential moving average, used for generation"),
    "warmup_steps": (int, "linear learning-rate warm-up steps (at most a tenth of --steps)"),
    "weight_decay": (float, "AdamW weight decay"),
    "out": (str, "output path (validate: RUN/report if unset)"),
    "resume": ("store_true", "continue training from the run's last checkpoint"),
    "distributed": ("store_true", "share the work over the processes that torchrun started "
                                  "(train: DistributedDataParallel; generate: a shard of chunks per rank)"),
    "bayesian": ("store_true", "variational weights: loss + KL/N_train; generate ensembles with --draws"),
    "draws": (int, "ensemble members (weight draws) of a Bayesian run; 1 uses the posterior means"),
    "sample_steps": (int, "sampler steps per event (sampler's default if unset)"),
    "solver": (str, "sampling procedure, e.g. ancestral or ddim for ddpm"),
    "keep_unphysical": ("store_true", "keep events outside the process's support (physical limits, acceptance) "
                                      "instead of drawing them again (generate: flagged in a branch unphysical)"),
    "reweight": ("store_true", "weight the events by the classifier that `bayesgen reweight RUN` fitted "
                               "(generate: a branch weight; validate: metrics with and without the weights)"),
    "epochs": (int, "passes of the classifier over its training events"),
    "samplers": (str, "comma-separated sampler names"),
    "train_events": (int, "training events per model"),
    "runs": ("list", "existing run directories to compare instead of training"),
}


PROCESS_DEFAULTS_NOTE = ("Each sampler brings its recipe (steps, batch size, learning rate, warm-up, EMA, "
                         "backbone and sampler options) and a process may set its own defaults over it (both "
                         "listed by `bayesgen plugins`); the TOML file and flags override them.")


def _add_flags(parser: argparse.ArgumentParser, config_class: type, names: Sequence[str]) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    for name in names:
        kind, text = FLAGS[name]
        flag = "--" + name.replace("_", "-")
        default = defaults[name]
        shown = default is not dataclasses.MISSING and default is not None and default is not False
        help_text = f"{text} (default: {default})" if shown else text
        if kind == "store_true":
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif kind == "list":
            parser.add_argument(flag, nargs="+", default=argparse.SUPPRESS, help=help_text, metavar="RUN")
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text,
                                metavar=name.upper())
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file")


def _config(args: argparse.Namespace, config_class: type, section: str):
    from bayesgen.core.api import configure

    given = {k: v for k, v in vars(args).items()
             if k in {f.name for f in dataclasses.fields(config_class)}}
    from_file = read_toml(args.config, config_class, section) if args.config else {}
    return configure(config_class, from_file, given)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="bayesgen", description="Fast generative surrogates for collider "
                                   "events with Bayesian uncertainties.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("plugins", help="list processes, backbones and samplers")

    train = commands.add_parser("train", help="train one model into a run directory", epilog=PROCESS_DEFAULTS_NOTE)
    _add_flags(train, TrainConfig, ["process", "sampler", "backbone", "steps", "batch_size", "lr",
                                    "events", "bayesian", "seed", "device", "threads", "distributed", "out",
                                    "resume", "checkpoint_every", "ema_decay", "warmup_steps", "weight_decay"])

    generate = commands.add_parser("generate", help="write generated events to .root or .npz")
    generate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(generate, GenerateConfig, ["events", "draws", "sample_steps", "solver", "batch_size", "precision",
                                          "compile", "seed", "device", "threads", "distributed", "keep_unphysical",
                                          "reweight", "out"])

    validate = commands.add_parser("validate", help="metrics.json and one PNG per observable")
    validate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(validate, ValidateConfig, ["events", "draws", "sample_steps", "solver", "batch_size", "precision",
                                          "compile", "seed", "device", "threads", "keep_unphysical", "reweight", "out"])

    reweight = commands.add_parser("reweight", help="fit per-event weights w = D/(1-D) of a classifier between "
                                                     "the run's training events and its generated events")
    reweight.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(reweight, ReweightConfig, ["events", "sample_steps", "solver", "batch_size", "precision", "seed",
                                          "device", "threads", "epochs", "out"])

    compare = commands.add_parser("compare", help="several samplers on one process, side by side",
                                  epilog=PROCESS_DEFAULTS_NOTE)
    _add_flags(compare, CompareConfig, ["process", "samplers", "backbone", "steps", "batch_size", "lr",
                                        "train_events", "events", "bayesian", "draws", "sample_steps",
                                        "seed", "device", "threads", "keep_unphysical", "runs", "out"])

    demo = commands.add_parser("demo", help="the three-minute CPU tour: train, generate, validate")
    demo.add_argument("--out", default="bayesgen-demo", help="demo directory (default: bayesgen-demo)")
    return main


def run_plugins() -> int:
    from bayesgen.core.registry import KINDS, describe, registry

    reg = registry()
    for kind in KINDS:
        print(f"{kind}:")
        for name, factory in reg.plugins(kind).items():
            print(f"  {name:<16} {describe(factory)}")
            defaults = getattr(factory, "training_defaults", None) if kind in ("processes", "samplers") else None
            if defaults:
                print(f"  {'':<16} training defaults: " + ", ".join(f"{k} = {v}" for k, v in defaults.items()))
    for failure in reg.failures:
        print(f"failed to load plugin {failure.name!r}: {failure.error}", file=sys.stderr)
    return 0


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "plugins":
        return run_plugins()
    if args.command == "train":
        from bayesgen.core.training import train

        run_dir = train(_config(args, TrainConfig, "train"))
        print(f"trained run in {run_dir}")
    elif args.command == "generate":
        from bayesgen.core.api import classifier_weights
        from bayesgen.core.generation import generate

        config = _config(args, GenerateConfig, "generate")
        stats = generate(args.run, config, weigh=classifier_weights(args.run, config))
        flagged = " with unphysical = 1" if config.keep_unphysical else ""
        print(f"bayesgen: {stats.describe_out_of_support(config.keep_unphysical)}{flagged}", file=sys.stderr)
        print(f"wrote {stats.n_events:,} events to {config.out} "
              f"({stats.events_per_second:,.0f} events/s, {stats.evaluations_per_event} network calls/event)")
    elif args.command == "validate":
        from bayesgen.validation.report import report_dir, validate
        from bayesgen.validation.summary import floor_table

        config = _config(args, ValidateConfig, "validate")
        report = validate(args.run, config)
        print(floor_table({report["sampler"]: report}))
        print(f"wrote {report_dir(args.run, config)}/metrics.json and {len(report['observables'])} plots")
    elif args.command == "reweight":
        from bayesgen.validation.reweighting import reweight

        reweighter, path = reweight(args.run, _config(args, ReweightConfig, "reweight"))
        print(reweighter.describe())
        print(f"wrote the classifier weights to {path}")
    elif args.command == "compare":
        from bayesgen.validation.compare import compare
        from bayesgen.validation.summary import floor_table

        config = _config(args, CompareConfig, "compare")
        result = compare(config)
        print(floor_table(result["samplers"]))
        print(f"compared {', '.join(result['samplers'])}: {config.out}/compare.md, compare.json and "
              f"{len(next(iter(result['samplers'].values()))['observables'])} plots")
    elif args.command == "demo":
        from bayesgen.core.demo import demo

        demo(args.out)
    return 0


#: exceptions that mean a mistake in code (ours or a plugin's), never in the user's input
BUGS = (LookupError, TypeError, AttributeError, NameError, AssertionError, ArithmeticError)


def describe_error(error: Exception) -> str:
    """One line for the user: a bayesgen error or an operating-system error as it is; an error
    that means a bug says so and where it happened, anything else names its type."""
    if isinstance(error, (BayesgenError, OSError)):
        return str(error) or type(error).__name__
    if not isinstance(error, BUGS):
        return f"{type(error).__name__}: {error}"
    modules, tb = [], error.__traceback__
    while tb is not None:
        modules.append(tb.tb_frame.f_globals.get("__name__", "?"))
        tb = tb.tb_next
    where = next((m for m in reversed(modules) if m.startswith("bayesgen")), modules[-1] if modules else "?")
    return (f"internal error: {type(error).__name__} in {where}: {error} (a bug, not a problem with your "
            "input: please report it; BAYESGEN_DEBUG=1 shows the traceback)")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"bayesgen: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return dispatch(args)
    except KeyboardInterrupt:
        print("bayesgen: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        if os.environ.get("BAYESGEN_DEBUG"):
            raise
        print(f"bayesgen: error: {describe_error(error)}", file=sys.stderr)
        return 2 if isinstance(error, BayesgenError) else 1


if __name__ == "__main__":
    sys.exit(main())
