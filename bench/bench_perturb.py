"""Images per second of judgekit's degradations against albumentations and imagecorruptions, on the same
1024x1024 RGB images in the same run.

    pip install albumentations==2.0.8 "setuptools<81" scikit-image pillow
    pip install --no-deps imagecorruptions==1.1.2   # it requires opencv-python, which clashes with -headless
    python bench/bench_perturb.py [--images 6] [--rounds 3] [--json bench/out/perturb.json]

Each figure is the median over ``--rounds`` rounds of (images / seconds) for one pass over the images; the
rounds interleave the contenders so that drifts of the machine hit all alike. A library that is not
installed is reported as missing, not skipped silently. Targets (issue 4): judgekit's motion blur at least as
fast as albumentations' MotionBlur on the same kernel, and >= 20x imagecorruptions' motion_blur
(severity 3). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from judgekit.perturbation import ops as P


def make_images(n: int, size: int = 1024, seed: int = 0) -> list[np.ndarray]:
    """Textured RGB images (smoothed noise plus gradients and edges), uint8, ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(n):
        noise = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3).astype(np.float32)
        grad = 255 * np.dstack([xx, yy, 1 - xx])
        img = 0.5 * noise + 0.5 * grad
        cv2.rectangle(img, (200, 300), (700, 600), (40, 40, 40), 8)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def contenders() -> tuple[dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]], dict[str, str]]:
    """{group: {name: function}} and the missing libraries with why."""
    missing: dict[str, str] = {}
    mb = P.steps_for("motion_blur", 3)  # length 13, horizontal
    groups: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
        "motion_blur": {
            "judgekit motion_blur@3 (13 px, horizontal)": lambda im: P.apply_step(im, mb),
            "judgekit motion_blur@3 at 30 degrees": lambda im: P.motion_blur(im, length=13, angle=30.0),
            "judgekit robustmad motion blur (exact formula)": lambda im: P.robustmad_motion_blur(im),
            "judgekit robustmad motion blur (original filter2D call)":
                lambda im: P.robustmad_motion_blur(im, impl="filter2d"),
            "cv2.filter2D, 13x13 horizontal line kernel (baseline)": _filter2d_line(13),
        },
        "low_light": {
            "judgekit robustmad low light (exact lookup table)": P.robustmad_low_light,
            "judgekit low_light@3 (gain/gamma lookup table)": lambda im: P.apply_step(im, P.steps_for("low_light", 3)),
            "numpy float formula saturate(|0.6x-10|) (baseline)":
                lambda im: np.clip(np.rint(np.abs(0.6 * im.astype(np.float32) - 10)), 0, 255).astype(np.uint8),
        },
    }
    try:
        import albumentations as A

        blur = A.MotionBlur(blur_limit=(13, 13), angle_range=(0, 0), direction_range=(0, 0), allow_shifted=False,
                            p=1.0)
        blur_any = A.MotionBlur(blur_limit=(13, 13), p=1.0)
        dark = A.RandomBrightnessContrast(brightness_limit=(-0.4, -0.4), contrast_limit=(-0.4, -0.4), p=1.0)
        groups["motion_blur"]["albumentations MotionBlur 13 px, horizontal"] = lambda im: blur(image=im)["image"]
        groups["motion_blur"]["albumentations MotionBlur 13 px, random angle"] = lambda im: blur_any(image=im)["image"]
        groups["low_light"]["albumentations RandomBrightnessContrast -0.4/-0.4"] = lambda im: dark(image=im)["image"]
    except ImportError as exc:
        missing["albumentations"] = str(exc)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from imagecorruptions import corrupt

        groups["motion_blur"]["imagecorruptions motion_blur severity 3"] = \
            lambda im: corrupt(im, severity=3, corruption_name="motion_blur")
        groups["low_light"]["imagecorruptions brightness severity 3 (brightens: no low light there)"] = \
            lambda im: corrupt(im, severity=3, corruption_name="brightness")
    except ImportError as exc:
        missing["imagecorruptions"] = str(exc)
    return groups, missing


def _filter2d_line(length: int) -> Callable[[np.ndarray], np.ndarray]:
    k = np.zeros((length, length), np.float32)
    k[length // 2, :] = 1.0 / length
    return lambda im: cv2.filter2D(im, -1, k)


def measure(groups, images: list[np.ndarray], rounds: int, log=print) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Median images/s per contender over ``rounds`` interleaved rounds (one warm-up call each first)."""
    np.random.seed(0)  # imagecorruptions and albumentations draw from global generators
    times: dict[str, dict[str, list[float]]] = {g: {n: [] for n in fns} for g, fns in groups.items()}
    for fns in groups.values():
        for fn in fns.values():
            fn(images[0])
    for r in range(rounds):
        for g, fns in groups.items():
            for name, fn in fns.items():
                t0 = time.perf_counter()
                for im in images:
                    fn(im)
                times[g][name].append(len(images) / (time.perf_counter() - t0))
        log(f"round {r + 1}/{rounds} done")
    return {g: {n: statistics.median(v) for n, v in d.items()} for g, d in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=6, help="distinct 1024x1024 images per pass (default 6)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported (default 3)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--json", type=Path, default=Path("bench/out/perturb.json"))
    args = ap.parse_args(argv)
    images = make_images(args.images, args.size)
    groups, missing = contenders()
    figures = measure(groups, images, args.rounds, log=lambda s: print(s, file=sys.stderr))
    print(f"# degradations on {args.images} {args.size}x{args.size} RGB images; median of {args.rounds} rounds; "
          f"OpenCV {cv2.__version__}, {cv2.getNumThreads()} OpenCV threads\n")
    for g, d in figures.items():
        print(f"| {g} | images/s |\n|---|---|")
        for name, ips in sorted(d.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {ips:,.1f} |")
        print()
    for lib, why in missing.items():
        print(f"missing: {lib} ({why})")
    ours = figures["motion_blur"]["judgekit motion_blur@3 (13 px, horizontal)"]
    ours_exact = figures["motion_blur"]["judgekit robustmad motion blur (exact formula)"]
    checks = []
    alb = figures["motion_blur"].get("albumentations MotionBlur 13 px, horizontal")
    ic = figures["motion_blur"].get("imagecorruptions motion_blur severity 3")
    if alb:
        checks.append(("motion_blur@3 / albumentations MotionBlur (same kernel)", ours / alb, 1.0))
        checks.append(("robustmad exact / albumentations MotionBlur", ours_exact / alb, 1.0))
    if ic:
        checks.append(("motion_blur@3 / imagecorruptions motion_blur", ours / ic, 20.0))
        checks.append(("robustmad exact / imagecorruptions motion_blur", ours_exact / ic, 20.0))
    alb_dark = figures["low_light"].get("albumentations RandomBrightnessContrast -0.4/-0.4")
    if alb_dark:
        checks.append(("robustmad low light / albumentations RandomBrightnessContrast",
                       figures["low_light"]["judgekit robustmad low light (exact lookup table)"] / alb_dark, 1.0))
    print("| ratio | value | target | |\n|---|---|---|---|")
    ok = True
    for name, value, target in checks:
        met = value >= target
        ok &= met
        print(f"| {name} | {value:.1f}x | >= {target:g}x | {'PASS' if met else 'MISS'} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"figures": figures, "checks": checks, "missing": missing,
                                     "opencv": cv2.__version__, "images": args.images, "size": args.size,
                                     "rounds": args.rounds}, indent=1))
    return 0 if ok and not missing else 1


if __name__ == "__main__":
    sys.exit(main())
