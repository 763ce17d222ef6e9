"""The ``bayesgen`` command line: one vocabulary of flags across subcommands.

Every flag's default lives in :mod:`bayesgen.core.config`; a flag given on the command line
overrides the ``--config`` TOML file, which overrides the defaults.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any, Sequence

from bayesgen.core.config import (CompareConfig, GenerateConfig, TrainConfig, ValidateConfig, build,
                                  read_toml)

# flag → (type or action, help); the same meaning in every subcommand that has it.
FLAGS: dict[str, tuple[Any, str]] = {
    "process": (str, "process plugin name"),
    "sampler": (str, "sampler plugin name"),
    "backbone": (str, "backbone plugin name"),
    "steps": (int, "optimiser steps"),
    "batch_size": (int, "events per training step, or rows per generation chunk "
                        "(generation default: from free GPU memory, 50,000 on a CPU)"),
    "precision": (str, "auto (bf16 autocast on CUDA, fp32 elsewhere), fp32 or bf16"),
    "compile": (str, "torch.compile the networks: none, default, reduce-overhead (CUDA graphs) or max-autotune"),
    "lr": (float, "peak learning rate (AdamW, cosine decay)"),
    "events": (int, "number of events (training events for train, generated events otherwise)"),
    "seed": (int, "random seed"),
    "device": (str, "auto, cpu, cuda or cuda:N"),
    "out": (str, "output path (validate: RUN/report if unset)"),
    "resume": ("store_true", "continue training from the run's last checkpoint"),
    "distributed": ("store_true", "share the work over the processes that torchrun started "
                                  "(train: DistributedDataParallel; generate: a shard of chunks per rank)"),
    "bayesian": ("store_true", "variational weights: loss + KL/N_train; generate ensembles with --draws"),
    "draws": (int, "ensemble members (weight draws) of a Bayesian run; 1 uses the posterior means"),
    "sample_steps": (int, "sampler steps per event (sampler's default if unset)"),
    "solver": (str, "sampling procedure, e.g. ancestral or ddim for ddpm"),
    "samplers": (str, "comma-separated sampler names"),
    "train_events": (int, "training events per model"),
    "runs": ("list", "existing run directories to compare instead of training"),
}


def _add_flags(parser: argparse.ArgumentParser, config_class: type, names: Sequence[str]) -> None:
    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    for name in names:
        kind, text = FLAGS[name]
        flag = "--" + name.replace("_", "-")
        default = defaults.get(name)
        help_text = f"{text} (default: {default})" if default not in (None, False) else text
        if kind == "store_true":
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif kind == "list":
            parser.add_argument(flag, nargs="+", default=argparse.SUPPRESS, help=help_text, metavar="RUN")
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text,
                                metavar=name.upper())
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file")


def _config(args: argparse.Namespace, config_class: type, section: str):
    given = {k: v for k, v in vars(args).items()
             if k in {f.name for f in dataclasses.fields(config_class)}}
    from_file = read_toml(args.config, config_class, section) if args.config else {}
    return build(config_class, from_file, given)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="bayesgen", description="Fast generative surrogates for collider "
                                   "events with Bayesian uncertainties.")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("plugins", help="list processes, backbones and samplers")

    train = commands.add_parser("train", help="train one model into a run directory")
    _add_flags(train, TrainConfig, ["process", "sampler", "backbone", "steps", "batch_size", "lr",
                                    "events", "bayesian", "seed", "device", "distributed", "out", "resume"])

    generate = commands.add_parser("generate", help="write generated events to .root or .npz")
    generate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(generate, GenerateConfig, ["events", "draws", "sample_steps", "solver", "batch_size", "precision",
                                          "compile", "seed", "device", "distributed", "out"])

    validate = commands.add_parser("validate", help="metrics.json and one PNG per observable")
    validate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(validate, ValidateConfig, ["events", "draws", "sample_steps", "solver", "batch_size", "precision",
                                          "compile", "seed", "device", "out"])

    compare = commands.add_parser("compare", help="several samplers on one process, side by side")
    _add_flags(compare, CompareConfig, ["process", "samplers", "backbone", "steps", "batch_size", "lr",
                                        "train_events", "events", "bayesian", "draws", "sample_steps",
                                        "seed", "device", "runs",
                                        "out"])

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
        from bayesgen.core.generation import generate

        config = _config(args, GenerateConfig, "generate")
        stats = generate(args.run, config)
        print(f"wrote {stats.n_events:,} events to {config.out} "
              f"({stats.events_per_second:,.0f} events/s, {stats.evaluations_per_event} network calls/event)")
    elif args.command == "validate":
        from bayesgen.validation.report import report_dir, validate
        from bayesgen.validation.summary import floor_table

        config = _config(args, ValidateConfig, "validate")
        report = validate(args.run, config)
        print(floor_table({report["sampler"]: report}))
        print(f"wrote {report_dir(args.run, config)}/metrics.json and {len(report['observables'])} plots")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return dispatch(args)
    except KeyboardInterrupt:
        print("bayesgen: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one clear line instead of a traceback
        if os.environ.get("BAYESGEN_DEBUG"):
            raise
        message = str(error) or type(error).__name__
        print(f"bayesgen: error: {message}", file=sys.stderr)
        return 2 if type(error).__module__.startswith("bayesgen") else 1


if __name__ == "__main__":
    sys.exit(main())
