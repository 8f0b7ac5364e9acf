"""``judgekit render``: the views of every point cloud of an items file, as PNG files for inspection
(:func:`judgekit.io.pointclouds.write_item_views`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    rd = sub.add_parser("render", help="write the views (front, side, top, isometric) of the items' point clouds",
                        description="Render every point cloud (PLY, PCD, XYZ, NPY) of ITEMS to the views judges and "
                                    "models see (front, side, top, isometric; depth-coloured or in the cloud's own "
                                    "RGB) and write them as OUT/<item id>/<cloud stem>_<view>.png. Renders are "
                                    "cached in $JUDGEKIT_RENDER_CACHE (default ~/.cache/judgekit/renders).")
    rd.add_argument("items", type=Path, help="an items or responses file (.jsonl, .csv, .parquet)")
    rd.add_argument("--out", type=Path, required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.io.dataio import read_items
    from judgekit.io.errors import JudgekitError
    from judgekit.io.pointclouds import write_item_views

    try:
        items = read_items(args.items)
    except JudgekitError as exc:
        if exc.field != "model" and exc.field != "response":
            raise
        from judgekit.io.dataio import read_responses  # a responses file: the same items, with answers

        items = list(read_responses(args.items))
    written = write_item_views(items, args.out)
    clouds = sum(len(it.point_clouds) for it in items)
    Console().print(f"{len(written)} views of {clouds} point clouds from {len(items)} items written to {args.out}"
                    if written else f"no point clouds in {args.items}: nothing written")
    return 0
