"""``judgekit rubric check``: validate a rubric file (:func:`judgekit.load_rubric`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from judgekit.cli._common import rubric_help


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    r = sub.add_parser("rubric", help="rubric tools")
    rsub = r.add_subparsers(dest="rubric_command", required=True, metavar="SUBCOMMAND")
    rc = rsub.add_parser("check", help="validate a rubric file")
    rc.add_argument("file", type=Path, help=rubric_help())


def run(args: argparse.Namespace) -> int:
    from judgekit.judging.rubric import load_rubric

    rubric = load_rubric(args.file)
    keys = ", ".join(rubric.reply_keys)
    # plain print, not rich: importing rich.console would be a sixth of this command's time
    ok = "\033[32mok\033[0m" if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else "ok"
    print(f"{ok} {args.file}: rubric '{rubric.name}' version {rubric.version}; "
          f"reply keys: {keys}; overall: {rubric.overall.method}; pass: {rubric.pass_rule}; "
          f"flags: {', '.join(f'{k} = {v}' for k, v in rubric.flags.items()) or 'none'}; "
          f"{len(rubric.examples)} example(s)")
    if rubric.checks:
        checks = "; ".join(_check_text(c) for c in rubric.checks)
        told = "told to the judge" if rubric.tell_judge_checks else "not told to the judge"
        print(f"fact checks (no judge call; {told}): {checks}")
    return 0


def _check_text(check) -> str:  # type: ignore[no-untyped-def]
    """``name (type, gate, weight w)`` of one fact check."""
    extra = [check.type] + (["gate"] if check.gate else []) + ([f"weight {check.weight:g}"] if check.weight else [])
    return f"{check.name} ({', '.join(extra)})"
