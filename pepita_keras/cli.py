"""The `pepita` command line.

Subcommands live in feature modules. Each such module exposes
`add_subparser(subparsers)`, which registers its subcommand(s) on an
`argparse` sub-parser action and sets `func` (a callable taking the parsed
`argparse.Namespace` and returning an exit code) via `set_defaults`.
Adding a feature to the CLI is one line in `SUBCOMMAND_MODULES`.

Modules are imported when the parser is built.

User errors. A mistake in what the user typed or pointed at (an unknown
config, a malformed `--seeds`, missing data, a bad tuning config) ends the
command like an argparse error: one `pepita <command>: error: <message>` on
stderr and exit status 2, no traceback. The convention that marks such
errors: a `ValueError` or `FileNotFoundError` (e.g.
`datasets.DatasetNotFoundError`) *raised explicitly by package code* — the
package validates user input with `raise ValueError(message)` throughout,
and those messages name the problem and the fix. Anything else keeps its
traceback, because it is a bug or an environment problem to investigate: a
TypeError, a ValueError that Python, TensorFlow, Keras or MLflow raised
(e.g. `int("x")` inside package code), or an error from a user's own config
file. The feature modules need no special exception type this way.
`PEPITA_TRACEBACK=1` shows the traceback of user errors too.

Example:

```
pepita list
pepita reproduce fc_mnist_pepita --seeds 0,1 --data-dir /data
pepita results
```
"""

import argparse
import importlib
import linecache
import os
import pathlib
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

    Returns:
        An `argparse.ArgumentParser`.
    """
    parser = argparse.ArgumentParser(
        prog="pepita",
        description="PEPITA and its rule family: paper reproductions, tracking, tuning.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).add_subparser(subparsers)
    return parser


# What a command may raise for bad user input (see the module docstring).
USER_ERROR_TYPES = (ValueError, FileNotFoundError)
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def is_user_error(error):
    """Whether `error` is a message for the user rather than a bug.

    True for a `USER_ERROR_TYPES` exception raised by an explicit `raise`
    statement in this package's code (the innermost traceback frame).

    Args:
        error: a caught exception (with its `__traceback__`).
    """
    if not isinstance(error, USER_ERROR_TYPES):
        return False
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    filename = traceback.tb_frame.f_code.co_filename
    try:
        pathlib.Path(filename).resolve().relative_to(_PACKAGE_DIR)
    except ValueError:
        return False  # raised by Python, a library, or a user's config file
    line = linecache.getline(filename, traceback.tb_lineno).strip()
    return line.startswith("raise ")


def main(argv=None):
    """Entry point of the `pepita` console script.

    Args:
        argv: argument list (defaults to `sys.argv[1:]`).

    Returns:
        The process exit code: the command's, or 2 for a usage or user
        error (printed as `pepita <command>: error: <message>`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except USER_ERROR_TYPES as error:
        if not is_user_error(error) or os.environ.get("PEPITA_TRACEBACK"):
            raise
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
