"""What every sllmr binary shares: absl app start-up and the one-line error contract."""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from absl import app, flags, logging

# Errors that mean "bad input or flags": reported as one line, exit status 2.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, KeyError, NotADirectoryError)


def run(main: Callable[[Sequence[str]], None]) -> None:
    """absl.app.run with bad input turned into `<binary>: error: <reason>` and exit 2."""

    def guarded(argv: Sequence[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        if not flags.FLAGS["verbosity"].present:
            # TensorFlow logs every checkpoint shard at INFO; progress is printed by the binaries.
            logging.set_verbosity(logging.WARNING)
        try:
            main(argv)
        except USER_ERRORS as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"{_program()}: error: {reason}", file=sys.stderr)
            sys.exit(2)

    app.run(guarded)


def _program() -> str:
    import os

    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "sllmr"
