"""``judgekit perturb``: degraded copies of images and a manifest (:func:`judgekit.api.perturb`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _positive_int, stderr_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    pt = sub.add_parser("perturb", help="write degraded copies of images (motion blur, low light, ...) + manifest",
                        description="Degrade every image of INPUT (a folder of images or an items file) under each "
                                    "condition and write the copies, OUT/manifest.jsonl and, for an items file, "
                                    "OUT/items.jsonl (clean + degraded items, ready for 'judgekit generate'). "
                                    "Operations: motion_blur, low_light, defocus_blur, gaussian_noise, jpeg; "
                                    "severity ladders in the README.")
    pt.add_argument("input", type=Path, help="a folder of images, or an items file (.jsonl, .csv, .parquet)")
    pt.add_argument("--ops", metavar="OPS",
                    help="comma-separated conditions; '+' composes operations; parameters as op:key=value, "
                         "e.g. motion_blur,low_light:noise=1,jpeg+gaussian_noise or motion_blur:angle=30")
    pt.add_argument("--severity", default="3", metavar="S",
                    help="severity 1-5: one (3), a range (1-5) or a list (1,3,5); every condition at each "
                         "(default 3)")
    pt.add_argument("--preset", choices=["robustmad"],
                    help="robustmad: RobustMAD's exact degradations, one per image pair (low light or "
                         "horizontal 12-pixel motion blur, chosen with seed 42), query and reference alike")
    pt.add_argument("--opencv-filter2d", action="store_true",
                    help="robustmad preset: blur with RobustMAD's original cv2.filter2D call (bit-identical to "
                         "their files made with the same OpenCV build; ~10x slower) instead of the exact formula")
    pt.add_argument("--seed", type=int, default=None,
                    help="seed of random operations (default 0) and of the preset's assignment (default 42)")
    pt.add_argument("--format", dest="fmt", choices=["same", "png", "jpg"], default="same",
                    help="format of the degraded files (default: the source's)")
    pt.add_argument("--out", type=Path, required=True, help="output folder")
    pt.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                    help="worker threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from judgekit.api import perturb

    console = stderr_console()

    def progress(done: int, total: int) -> None:
        if console.is_terminal:
            console.print(f"  {done}/{total} source images", end="\r")

    result = perturb(args.input, args.out, ops=args.ops, severity=args.severity, preset=args.preset, seed=args.seed,
                     fmt=args.fmt, threads=args.threads, opencv_filter2d=args.opencv_filter2d, progress=progress)
    out = Console()
    counts = {c: sum(r["condition"] == c for r in result.rows) for c in result.conditions}
    out.print(f"{len(result.rows)} degraded images from {result.sources} sources in {result.seconds:.1f} s "
              f"({', '.join(f'{c}: {n}' for c, n in counts.items())})")
    out.print(f"manifest: {result.manifest}")
    if result.items is not None:
        out.print(f"items:    {result.items} (clean + degraded; next: judgekit generate)")
    note = result.removal_note()
    if note is not None:
        out.print(note)
    return 0
