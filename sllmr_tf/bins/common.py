"""What every sllmr binary shares: start-up, help, and the error contract.

- `--help` lists the binary's own flags with their docs and defaults (exit 0),
  `--helpfull` every flag; neither imports TensorFlow, since the binaries
  import their TensorFlow-heavy modules inside `main`.
- A bad flag value or a `UserError` ends the run with one line
  `<binary>: error: <reason>` and exit status 2; files already written stay.
- Anything else is a bug: it propagates with its traceback (exit status 1).
- --verbosity brings back absl's and TensorFlow's own logs (sllmr_tf/__init__.py).
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from absl import app, flags, logging

from sllmr_tf import LOGS_VARIABLE
from sllmr_tf.errors import ConfigError, UserError

FLAGS = flags.FLAGS
_HELP = ("--help", "-h", "-?", "--helpshort")
_HELPFULL = ("--helpfull",)
_program = "sllmr"


def program() -> str:
    """The console script's name (sllmr-<binary>), also under `python -m sllmr_tf.bins.<binary>`."""
    return _program


def fail(reason: str) -> None:
    """Report a user error in one line and exit 2."""
    lines = str(reason).strip().splitlines()
    print(f"{program()}: error: {lines[0] if lines else 'failed'}", file=sys.stderr)
    sys.exit(2)


def run(main: Callable[[Sequence[str]], None], module: str, usage: str, passes_arguments: bool = False) -> None:
    """Parse the flags and run `main` under the error contract.

    Args:
        main: the binary's main(argv).
        module: the binary's module name (`__name__`), whose flags `--help` lists.
        usage: the text --help shows above the flags (the module docstring).
        passes_arguments: `main` takes the arguments that are not flags of ours (those after
            `--`) in argv[1:]; otherwise any such argument is refused.
    """
    global _program
    spec = getattr(sys.modules[module], "__spec__", None)
    _program = "sllmr-" + (spec.name if spec else module).rsplit(".", 1)[-1]
    arguments = sys.argv[1:]
    if any(a in _HELP or a in _HELPFULL for a in arguments):
        print(usage.strip())
        print()
        print(FLAGS.get_help() if any(a in _HELPFULL for a in arguments) else FLAGS.module_help(module))
        sys.exit(0)
    app.run(_guarded(main, passes_arguments), flags_parser=_parse)


def _parse(argv: Sequence[str]) -> list[str]:
    try:
        return FLAGS(argv)
    except flags.Error as error:
        fail(str(error))


def _guarded(main: Callable[[Sequence[str]], None], passes_arguments: bool) -> Callable[[Sequence[str]], None]:
    def guarded(argv: Sequence[str]) -> None:
        if FLAGS["verbosity"].present:
            # Asked for logs: TensorFlow's too (main imports TensorFlow after this).
            os.environ[LOGS_VARIABLE] = "1"
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        else:
            # TensorFlow logs every checkpoint shard at INFO; the binaries print their own progress.
            logging.set_verbosity(logging.WARNING)
        try:
            if len(argv) > 1 and not passes_arguments:
                raise ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
            main(argv)
        except UserError as error:
            fail(str(error))

    return guarded
