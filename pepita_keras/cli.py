"""The `pepita` command line.

Subcommands live in feature modules. Each such module exposes
`add_subparser(subparsers)`, which registers its subcommand(s) on an
`argparse` sub-parser action and sets `func` (a callable taking the parsed
`argparse.Namespace` and returning an exit code) via `set_defaults`.
Adding a feature to the CLI is one line in `SUBCOMMAND_MODULES`.

Modules are imported lazily, and only when they exist, so the CLI keeps
working while features land and `pepita --help` stays fast.

Example:

```
pepita list
pepita reproduce fc_mnist_pepita --seeds 0,1 --data-dir /data
pepita results
```
"""

import argparse
import importlib
import sys

# Feature modules that register subcommands, in help order. Each must define
# `add_subparser(subparsers)`.
SUBCOMMAND_MODULES = (
    "pepita_keras.reproduce",  # reproduce, list
    "pepita_keras.results",  # results
    "pepita_keras.tuning",  # tune, tune-report
)


def build_parser(modules=SUBCOMMAND_MODULES):
    """Builds the `pepita` argument parser.

    Args:
        modules: dotted module names whose `add_subparser` is called.
            A module that is not installed (yet) is skipped; any other
            import error is raised, so broken features are not hidden.

    Returns:
        An `argparse.ArgumentParser`.
    """
    parser = argparse.ArgumentParser(
        prog="pepita",
        description="PEPITA and its rule family: paper reproductions, tracking, tuning.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # the module exists but a dependency is missing
                raise
            continue
        module.add_subparser(subparsers)
    return parser


def main(argv=None):
    """Entry point of the `pepita` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
