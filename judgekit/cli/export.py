"""``judgekit export``: every stored call of a store, as a records file (:func:`judgekit.api.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    e = sub.add_parser("export", help="export every stored call of a store")
    e.add_argument("store", type=Path)
    e.add_argument("--out", type=Path, required=True, help=".jsonl, .csv or .parquet")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import export

    # read-only: a missing file, a folder or a file that is not a judgekit store is refused and left unchanged
    count = export(args.store, args.out)
    print(f"{count} calls -> {args.out}")
    return 0
