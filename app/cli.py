"""The ``bayesgen`` command line: one vocabulary of flags across subcommands.

Every flag, its default and its help text live in :mod:`bayesgen.engine.config`; a flag given
on the command line overrides the ``--config`` TOML file, which overrides the defaults.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import typing
import warnings
from typing import Sequence

from bayesgen.core.errors import BayesgenError
from bayesgen.engine.config import (CompareConfig, DemoConfig, GenerateConfig, LaplaceConfig, ReweightConfig,
                                   TrainConfig, ValidateConfig, is_flag, read_toml)

PROCESS_DEFAULTS_NOTE = ("Each sampler brings its recipe (steps, batch size, learning rate, warm-up, EMA, "
                         "backbone and sampler options) and a process may set its own defaults over it (both "
                         "listed by `bayesgen plugins`); the TOML file and flags override them.")


def _add_flags(parser: argparse.ArgumentParser, config_class: type) -> None:
    """A flag for every option of ``config_class`` (all but the tables of plugin options), with
    the type, help text and default its field declares, and ``--config``."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        if not is_flag(f):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = next(a for a in (typing.get_args(hints[f.name]) or (hints[f.name],)) if a is not type(None))
        shown = f.default is not dataclasses.MISSING and f.default is not None and f.default is not False
        help_text = f"{f.metadata['help']} (default: {f.default})" if shown else f.metadata["help"]
        if kind is bool:
            parser.add_argument(flag, action="store_true", default=argparse.SUPPRESS, help=help_text)
        elif kind is list:
            parser.add_argument(flag, nargs="+", default=argparse.SUPPRESS, help=help_text, metavar="RUN")
        else:
            parser.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=help_text, metavar=f.name.upper())
    parser.add_argument("--config", metavar="FILE.toml", help="read options from a TOML file")


def _config(args: argparse.Namespace, config_class: type, section: str):
    from bayesgen.app.api import configure

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
    _add_flags(train, TrainConfig)

    generate = commands.add_parser("generate", help="write generated events to .root or .npz")
    generate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(generate, GenerateConfig)

    validate = commands.add_parser("validate", help="metrics.json, one PNG per observable and histograms.root")
    validate.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(validate, ValidateConfig)

    reweight = commands.add_parser("reweight", help="fit per-event weights w = D/(1-D) of a classifier between "
                                                     "the run's training events and its generated events")
    reweight.add_argument("run", help="run directory written by `bayesgen train`")
    _add_flags(reweight, ReweightConfig)

    laplace = commands.add_parser("laplace", help="a Bayesian run from a trained deterministic one: the Laplace "
                                                   "posterior of its output layers about the trained weights")
    laplace.add_argument("run", help="run directory written by `bayesgen train` (without --bayesian)")
    _add_flags(laplace, LaplaceConfig)

    compare = commands.add_parser("compare", help="several samplers on one process, side by side",
                                  epilog=PROCESS_DEFAULTS_NOTE)
    _add_flags(compare, CompareConfig)

    demo = commands.add_parser("demo", help="the five-minute CPU tour: train, generate, validate")
    _add_flags(demo, DemoConfig)
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
        from bayesgen.engine.training import train

        run_dir = train(_config(args, TrainConfig, "train"))
        print(f"trained run in {run_dir}")
    elif args.command == "generate":
        from bayesgen.app.reweight import classifier_weights
        from bayesgen.engine.generation import generate

        config = _config(args, GenerateConfig, "generate")
        stats = generate(args.run, config, weigh=classifier_weights(args.run, config))
        flagged = " with unphysical = 1" if config.keep_unphysical else ""
        print(f"bayesgen: {stats.describe_out_of_support(config.keep_unphysical)}{flagged}", file=sys.stderr)
        print(f"wrote {stats.n_events:,} events to {config.out} "
              f"({stats.events_per_second:,.0f} events/s, {stats.evaluations_per_event} network calls/event)")
    elif args.command == "validate":
        from bayesgen.app.validate import validate
        from bayesgen.validation.summary import floor_table

        config = _config(args, ValidateConfig, "validate")
        report = validate(args.run, config)
        print(floor_table({report["sampler"]: report}))
        print(f"wrote {report.out}/metrics.json, histograms.root and {len(report.plots)} plots")
    elif args.command == "reweight":
        from bayesgen.app.reweight import reweight

        reweighter, path = reweight(args.run, _config(args, ReweightConfig, "reweight"))
        print(reweighter.describe())
        print(f"wrote the classifier weights to {path}")
    elif args.command == "laplace":
        from bayesgen.engine.laplace import laplace, prior_words

        out, record = laplace(args.run, _config(args, LaplaceConfig, "laplace"))
        print(f"wrote the Laplace posterior of {len(record['layers'])} layers ({prior_words(record)}; "
              f"{record['events']:,} training events) to {out}; draw its ensemble with "
              f"`bayesgen validate {out} --draws 20`")
    elif args.command == "compare":
        from bayesgen.app.compare import compare
        from bayesgen.validation.summary import floor_table

        config = _config(args, CompareConfig, "compare")
        result = compare(config)
        print(floor_table(result["samplers"]))
        print(f"compared {', '.join(result['samplers'])}: {config.out}/compare.md, compare.json, histograms.root "
              "and one plot per compared observable")
    elif args.command == "demo":
        from bayesgen.app.demo import demo

        demo(_config(args, DemoConfig, "demo"))
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
