"""The ``judgekit`` command: a thin layer that parses flags, calls the Python API (:mod:`judgekit.api`) and
prints what it returns. One module per command (``judge``, ``report``, ``demo``, ``validate``, ``perturb``,
``render``, ``generate``, ``agree``, ``compare``, ``study``, ``probe``, ``mcq``, ``rubric``, ``export``,
``store``, ``plan``), each with ``add_parser(sub)`` and ``run(args)``; what they share is in
:mod:`judgekit.cli._common`.

Exit codes: 0 done; 2 bad input or setup (the message names the file and line, the flag, or the cause - an
unknown provider, a refused key, a server that does not answer; nothing is written); 3 incomplete (the cost
budget was reached or some samples failed in transport: re-run the same command to resume); 4 the machine
failed (disk full, I/O error: every finished call is stored); 130 interrupted (everything finished so far is
in the store); 141 the reader of the output went away (``| head``).
Heavy imports (litellm, scipy, pyarrow) happen inside the commands, never at ``--help`` time.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence

from judgekit import __version__
from judgekit.cli import (
    agree,
    compare,
    demo,
    export,
    generate,
    judge,
    mcq,
    perturb,
    plan,
    probe,
    render,
    report,
    rubric,
    store,
    study,
    validate,
)
from judgekit.cli._common import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_SYSTEM,
    _progress_callback,
    print_summary,
)
from judgekit.io.errors import JudgekitError

__all__ = ["EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "EXIT_INCOMPLETE", "EXIT_INTERRUPTED", "EXIT_SYSTEM",
           "_progress_callback", "main", "print_summary"]

#: The commands in the order ``judgekit --help`` lists them.
COMMANDS = {"judge": judge, "report": report, "demo": demo, "validate": validate, "perturb": perturb,
            "render": render, "generate": generate, "agree": agree, "compare": compare, "study": study, "probe": probe,
            "mcq": mcq, "rubric": rubric, "export": export, "store": store, "plan": plan}


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="judgekit", description="Score open-ended answers with LLM judges.")
    p.add_argument("--version", action="version", version=f"judgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``judgekit`` console script.

    Run as the console script (``argv`` None), an interrupted command ends with ``os._exit(130)`` once its
    output is flushed and its store closed: a local judge's scoring thread may still be inside the model, and
    the interpreter's normal shutdown would wait for it or abort in it."""
    code = _main(argv)
    if code == EXIT_INTERRUPTED and argv is None:
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser().parse_args(argv)
    command = COMMANDS.get(args.command)
    if command is None:
        return 1
    try:
        return command.run(args)
    except JudgekitError as exc:
        print(f"judgekit: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("judgekit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (judgekit agree ... | head): no traceback, the shell's code for it
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's exit flush of stdout must not raise again
        return EXIT_BROKEN_PIPE
    except (OSError, sqlite3.Error) as exc:
        # the machine, not the input: a full disk, an I/O error, a store that cannot be written. Every call that
        # finished is in the store (committed one by one), so a re-run after fixing it pays for nothing again.
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"judgekit: error: {what}{where}; every finished call is in the store: fix it and re-run the same "
              "command", file=sys.stderr)
        return EXIT_SYSTEM


if __name__ == "__main__":
    sys.exit(main())
