"""``judgekit store merge A.sqlite B.sqlite ... --into S.sqlite``: copy every call of the source stores into one
store by call key (:func:`judgekit.judging.merge.merge_stores`).

Idempotent (a call already in the target is skipped), atomic per source (one transaction each), refuses a
store of another rubric or judge identity (exit 2, nothing of that source merged), and never overwrites: a
call whose key and attempt are in the target with another reply is a conflict, listed on stderr, and the exit
code is then 3. The target may be a new file; the sources are only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    s = sub.add_parser("store", help="work on stores (merge)",
                       description="Work on judgekit stores.")
    ops = s.add_subparsers(dest="store_command", required=True, metavar="ACTION")
    m = ops.add_parser("merge", help="merge stores into one by call key",
                       description="Copy every call of the source stores into --into by call key: idempotent, one "
                                   "transaction per source, conflicts reported and never overwritten, stores of "
                                   "another rubric or judge refused. A run on the merged store pays for nothing "
                                   "that any source holds.")
    m.add_argument("sources", type=Path, nargs="+", metavar="STORE", help="source stores (read only)")
    m.add_argument("--into", type=Path, required=True, metavar="TARGET",
                   help="the store to merge into (created when missing)")
    m.add_argument("--allow-mixed", action="store_true",
                   help="merge even a store of another rubric or judge identity (each call keeps its own key)")


def run(args: argparse.Namespace) -> int:
    from judgekit.cli._common import EXIT_INCOMPLETE
    from judgekit.judging.merge import merge_stores

    report = merge_stores(args.sources, args.into, allow_mixed=args.allow_mixed)
    for s in report.sources:
        print(f"{s.path}: {s.added} calls added, {s.skipped} already in the target, {s.conflicts} conflicts, "
              f"{s.failures_added} failure records ({s.seconds:.2f} s)")
        for key, attempt in s.conflict_rows:
            print(f"judgekit: conflict: {s.path}: call {key} attempt {attempt} differs from the target's; "
                  "left out (the target's is kept)", file=sys.stderr)
        if s.conflicts > len(s.conflict_rows):
            print(f"judgekit: ... and {s.conflicts - len(s.conflict_rows)} more conflicts in {s.path}", file=sys.stderr)
    print(f"{report.added} calls added -> {report.target}")
    return EXIT_INCOMPLETE if report.conflicts else 0
