"""Benchmark of judgekit.stats.robustness.compare_conditions on a synthetic robustness run.

``python bench/bench_robustness.py`` builds 10 models x 1000 items x (clean + 3 degraded conditions) judgments
with 5 criteria and 4 categories, then times one call of compare_conditions with 2000 bootstrap resamples
(rows: every model x condition, plus the pooled condition, x category plus "all" x 5 criteria + overall +
pass). Options: --models, --items, --criteria, --conditions, --categories, --n-boot, --repeat.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from judgekit.io.records import Judgment
from judgekit.stats.robustness import compare_conditions


def synthetic(models: int, items: int, criteria: list[str], conditions: list[str], categories: int,
              seed: int = 0) -> list[Judgment]:
    rng = np.random.default_rng(seed)
    out = []
    for m in range(models):
        base = rng.integers(1, 6, size=(items, len(criteria)))
        for k, cond in enumerate([None, *conditions]):
            drop = 0 if cond is None else rng.choice([-2, -1, -1, 0, 0, 0, 1], size=base.shape) * (k > 0)
            scores = np.clip(base + drop, 1, 5).astype(float)
            unscored = rng.random(items) < 0.01
            for i in range(items):
                common = {"id": f"q{i}", "model": f"model{m}", "condition": cond, "category": f"cat{i % categories}",
                          "judge": "judge"}
                if unscored[i]:
                    out.append(Judgment.model_construct(**common, status="unscored", scores={}, overall=None,
                                                        passed=None))
                    continue
                s = dict(zip(criteria, scores[i].tolist(), strict=True))
                overall = float(np.mean(scores[i]))
                out.append(Judgment.model_construct(**common, status="scored", scores=s, overall=overall,
                                                    passed=overall >= 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--criteria", type=int, default=5)
    ap.add_argument("--conditions", type=int, default=3)
    ap.add_argument("--categories", type=int, default=4)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    criteria = [f"c{k}" for k in range(a.criteria)]
    conditions = ["low_light", "motion_blur", "jpeg@2+low_light@1", "motion_blur@3", "jpeg@4"][: a.conditions]
    t0 = time.perf_counter()
    js = synthetic(a.models, a.items, criteria, conditions, a.categories)
    t_build = time.perf_counter() - t0
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        rows = compare_conditions(js, criteria, n_boot=a.n_boot, seed=0)
        dt = time.perf_counter() - t0
        print(f"{len(js)} judgments (built in {t_build:.1f} s) -> {len(rows)} rows, n_boot={a.n_boot}: {dt:.2f} s")


if __name__ == "__main__":
    main()
