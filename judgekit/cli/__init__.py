"""The ``judgekit`` command: a thin layer that parses flags, calls the Python API (:mod:`judgekit.api`) and
prints what it returns. One module per command (``judge``, ``report``, ``demo``, ``validate``, ``perturb``,
``render``, ``generate``, ``agree``, ``compare``, ``study``, ``probe``, ``mcq``, ``rubric``, ``export``,
``store``, ``plan``, ``server``), each with ``add_parser(sub)`` and ``run(args)``; what they share is in
:mod:`judgekit.cli._common`. The console script is :func:`judgekit.cli.warm.main`: a command runs in a child of
a warm server when one answers, else here (:func:`main`).

Exit codes: 0 done; 2 bad input or setup (the message names the file and line, the flag, or the cause - an
unknown provider, a refused key, a server that does not answer; nothing is written); 3 incomplete (the cost
budget was reached or some samples failed in transport: re-run the same command to resume); 4 the machine
failed (disk full, I/O error: every finished call is stored); 130 interrupted (everything finished so far is
in the store); 141 the reader of the output went away (``| head``).
Heavy imports (litellm, scipy, pyarrow) happen inside the commands, never at ``--help`` time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from judgekit import __version__
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

#: The commands in the order ``judgekit --help`` lists them (each the module ``judgekit.cli.<name>``).
COMMANDS = ("judge", "report", "demo", "validate", "perturb", "render", "generate", "agree", "compare", "study",
            "probe", "mcq", "rubric", "export", "store", "plan", "server")


def _command(name: str) -> Any:
    import importlib

    return importlib.import_module(f"judgekit.cli.{name}")


def _build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; when ``argv`` names a command, only that command's module is loaded (and parsed for): the
    others matter only to ``judgekit --help`` and to a mistyped command, which get them all."""
    p = argparse.ArgumentParser(prog="judgekit", description="Score open-ended answers with LLM judges.")
    p.add_argument("--version", action="version", version=f"judgekit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    args = list(sys.argv[1:] if argv is None else argv)
    for name in [args[0]] if args and args[0] in COMMANDS else COMMANDS:
        _command(name).add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``judgekit`` console script.

    Run as the console script (``argv`` None), an interrupted command ends with ``os._exit(130)`` once its
    output is flushed and its store closed: a local judge's scoring thread may still be inside the model, and
    the interpreter's normal shutdown would wait for it or abort in it. Any other command ends the same way,
    with its own code, when :func:`_nothing_left_to_finish` says the shutdown would only free memory.

    The console script does not look for pydantic plugins (``PYDANTIC_DISABLE_PLUGINS=__all__`` unless the variable
    is set): finding none means reading the metadata of every installed package, ~40-70 ms of every judging
    command. Set ``PYDANTIC_DISABLE_PLUGINS=`` (empty) to load them. With plugins disabled, pydantic's plugin
    loader is not imported either (:func:`_skip_pydantic_plugin_loader`)."""
    if argv is None:
        import os

        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        _skip_pydantic_plugin_loader()
    try:
        code = _main(argv)
    finally:
        if argv is None:  # also after argparse's own exits (--help, --version, a usage error)
            from judgekit.cli.warm import after_direct_run

            after_direct_run()  # the next command starts warm
    if argv is None and (code == EXIT_INTERRUPTED or _nothing_left_to_finish()):
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _skip_pydantic_plugin_loader() -> None:
    """When ``PYDANTIC_DISABLE_PLUGINS`` disables every plugin (``__all__``, ``1`` or ``true``, the values for which
    pydantic's ``get_plugins`` returns no plugin without looking), stand in for pydantic's private module
    ``pydantic.plugin._loader`` with one whose ``get_plugins`` returns that same empty answer. Why: pydantic
    imports that module when it builds its first validator, and the module imports ``importlib.metadata`` (with
    email, zipfile and csv) at its top even when plugins are disabled: ~30-40 ms of every judging command on this
    machine, for nothing. Nothing is done when the module is loaded already, or when plugins may load."""
    import os

    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true") or name in sys.modules:
        return
    import types

    stub = types.ModuleType(name, "judgekit's stand-in: plugins are disabled (PYDANTIC_DISABLE_PLUGINS)")
    stub.get_plugins = lambda: ()  # type: ignore[attr-defined]
    sys.modules[name] = stub


def _nothing_left_to_finish() -> bool:
    """True when the interpreter's own shutdown would only tear down memory: no other thread alive (the prefetch
    thread aside), no package loaded that finishes work at exit (litellm's logging workers, Ray, torch). Every
    file a command writes is written and closed, and its store closed, before it returns; skipping the teardown
    (module by module, object by object: ~0.1 s after a 2,000-judgment run) is then safe, as mypy does."""
    import threading

    from judgekit.cli.warm import WATCH_THREAD  # a warm child's watch on its command

    if any(t is not threading.main_thread() and t.name not in ("judgekit-prefetch", WATCH_THREAD)
           and t.is_alive()
           for t in threading.enumerate()):
        return False
    return not any(name in sys.modules for name in ("litellm", "ray", "torch", "multiprocessing.pool"))


def _main(argv: Sequence[str] | None) -> int:
    args = _build_parser(argv).parse_args(argv)
    if args.command not in COMMANDS:
        return 1
    command = _command(args.command)
    import gc

    # The modules loaded so far live as long as the process: moved out of the collector's view, they are not
    # scanned again by every full collection of a long run.
    gc.freeze()
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
    except Exception as exc:
        # the machine, not the input: a full disk, an I/O error, a store that cannot be written. Every call that
        # finished is in the store (committed one by one), so a re-run after fixing it pays for nothing again.
        # (sqlite3 is looked up, not imported: a command that never opened a store cannot raise its errors, and
        # its import is not worth paying at every start.)
        sqlite3 = sys.modules.get("sqlite3")
        if not isinstance(exc, OSError) and (sqlite3 is None or not isinstance(exc, sqlite3.Error)):
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"judgekit: error: {what}{where}; every finished call is in the store: fix it and re-run the same "
              "command", file=sys.stderr)
        return EXIT_SYSTEM


if __name__ == "__main__":
    sys.exit(main())
