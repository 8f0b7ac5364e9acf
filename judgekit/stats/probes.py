"""The statistics of the bias probes (``judgekit probe``): how far a judge's verdicts move when an answer is
changed in a way that should not move them, and how far they move when nothing changes.

Conventions:

- a *pair* is one answer judged unchanged (the baseline) and changed (the probe); a pair with an unscored side
  is dropped from every figure and counted (``unscored_baseline``, ``unscored_probe``: a parse failure is never
  a score, and a probe that makes the judge fail is visible there);
- shifts are ``probe - baseline``, per criterion and for overall, with the paired figures of
  :func:`~judgekit.stats.paired_tests.paired_difference`: a 95 % percentile bootstrap over the pairs
  (``numpy.random.default_rng(seed)``) and Wilcoxon's signed-rank test with Pratt's zeros;
- a *flip* is a pair whose pass verdicts differ; the flip share is over the pairs, with a 95 % percentile
  bootstrap of the share; ``fail_to_pass`` / ``pass_to_fail`` split them, and McNemar's exact test compares the
  two directions (a judge that flips both ways equally is noisy, one way only is biased);
- a pooled row (:func:`pooled_shift`, e.g. every injection phrasing at once) pairs each answer's baseline with
  the mean of its probes' values (one pair per answer, so the bootstrap resamples answers), and its flip share
  is the share of answers that *some* probe of the pool flips (an attack's success rate over phrasings);
- self-consistency (:func:`self_consistency`) is measured on the baseline re-sampled: per answer with at least
  two valid samples, the population standard deviation of each criterion across its samples (0 when they all
  agree), averaged over answers, and the share of answers whose samples do not all give the same pass verdict.
- multiple comparisons (:func:`correct_probes`): the *family* is every test the probes table shows, i.e. per
  probe row (pooled rows included) the Wilcoxon test of the shift of overall and McNemar's test of its pass
  flips, each counted when it has a p-value (a pooled row has no McNemar test; a probe without pairs has
  neither). The per-criterion shifts are described by their intervals only and are not in the family. The
  adjusted p-values (Holm by default, :mod:`judgekit.stats.multiple`) star the verdicts (``p adj < 0.05``).

These functions are pure (numbers in, numbers out); the judging is :mod:`judgekit.api.probe`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from judgekit.stats.paired_tests import PairedDifference, bootstrap_mean_ci, mcnemar_exact, paired_difference

__all__ = ["Consistency", "ProbeShift", "correct_probes", "pooled_shift", "probe_family_text", "probe_shift",
           "self_consistency"]

Scores = Mapping[str, float] | None  # a judgment's scores with "overall"; None: unscored


def _share_ci(flags: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    """The mean of a 0/1 array with its percentile-bootstrap 95 % interval (nan without data)."""
    if flags.size == 0:
        return math.nan, math.nan, math.nan
    lo, hi = bootstrap_mean_ci(flags.astype(float), n_boot=n_boot, rng=np.random.default_rng(seed))
    return float(flags.mean()), float(lo), float(hi)


def _diff_dict(d: PairedDifference) -> dict[str, Any]:
    return {"n": d.n, "baseline": d.baseline, "probe": d.degraded, "shift": d.diff, "ci": [d.ci_low, d.ci_high],
            "p_value": d.p_value, "test": d.test, "lower": d.n_worse, "higher": d.n_better, "note": d.note}


@dataclass(frozen=True)
class ProbeShift:
    """The figures of one probe (see the module docstring)."""

    probe: str  # e.g. verbosity+50%, injection:ignore-rubric, injection (any), image:motion_blur
    family: str  # verbosity, injection, image
    answers: int  # answers probed
    pairs: int  # both sides scored
    unscored_baseline: int
    unscored_probe: int
    shifts: dict[str, PairedDifference]  # per metric (criteria, then overall): probe - baseline
    pass_baseline: float  # pass rates over the pairs
    pass_probe: float
    flip_share: float
    flip_ci: tuple[float, float]
    fail_to_pass: int
    pass_to_fail: int
    mcnemar_p: float  # nan for a pooled row or without pairs
    pooled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the verbosity probe's mean length ratio

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None by :func:`judgekit.stats.passrate.json_ready` at the caller)."""
        return {"probe": self.probe, "family": self.family, "pooled": self.pooled, "answers": self.answers,
                "pairs": self.pairs, "unscored_baseline": self.unscored_baseline,
                "unscored_probe": self.unscored_probe,
                "shifts": {m: _diff_dict(d) for m, d in self.shifts.items()},
                "pass": {"baseline": self.pass_baseline, "probe": self.pass_probe, "flip_share": self.flip_share,
                         "flip_ci": list(self.flip_ci), "fail_to_pass": self.fail_to_pass,
                         "pass_to_fail": self.pass_to_fail, "mcnemar_p": self.mcnemar_p},
                **({"extra": self.extra} if self.extra else {})}


def _values(side: Sequence[Scores], metric: str) -> np.ndarray:
    return np.array([math.nan if s is None else float(s[metric]) for s in side], dtype=float)


def probe_shift(baseline: Sequence[Scores], probed: Sequence[Scores], base_pass: Sequence[bool | None],
                probe_pass: Sequence[bool | None], metrics: Sequence[str], *, probe: str, family: str,
                n_boot: int = 2000, seed: int = 0, extra: dict[str, Any] | None = None) -> ProbeShift:
    """The shift of one probe over aligned pairs: ``baseline[i]`` / ``probed[i]`` are the scores (with
    ``overall``; None when unscored) of answer ``i`` unchanged and changed, ``base_pass`` / ``probe_pass`` the
    pass verdicts. ``metrics`` are the score names compared (criteria, then overall)."""
    if not len(baseline) == len(probed) == len(base_pass) == len(probe_pass):
        raise ValueError("baseline, probed and their pass verdicts must have the same length")
    shifts = {m: paired_difference(_values(baseline, m), _values(probed, m), n_boot=n_boot, seed=seed)
              for m in metrics}
    both = [i for i in range(len(baseline)) if baseline[i] is not None and probed[i] is not None
            and base_pass[i] is not None and probe_pass[i] is not None]
    b = np.array([bool(base_pass[i]) for i in both], dtype=bool)
    p = np.array([bool(probe_pass[i]) for i in both], dtype=bool)
    flips = b != p
    share, lo, hi = _share_ci(flips, n_boot, seed)
    f2p, p2f = int((~b & p).sum()), int((b & ~p).sum())
    return ProbeShift(probe=probe, family=family, answers=len(baseline), pairs=len(both),
                      unscored_baseline=sum(s is None for s in baseline), unscored_probe=sum(s is None for s in probed),
                      shifts=shifts, pass_baseline=float(b.mean()) if both else math.nan,
                      pass_probe=float(p.mean()) if both else math.nan, flip_share=share, flip_ci=(lo, hi),
                      fail_to_pass=f2p, pass_to_fail=p2f, mcnemar_p=mcnemar_exact(p2f, f2p) if both else math.nan,
                      extra=extra or {})


def pooled_shift(baseline: Sequence[Scores], probes: Sequence[Sequence[Scores]], base_pass: Sequence[bool | None],
                 probe_passes: Sequence[Sequence[bool | None]], metrics: Sequence[str], *, probe: str, family: str,
                 n_boot: int = 2000, seed: int = 0) -> ProbeShift:
    """Several probes of one family at once (``probes[k][i]``: probe ``k`` on answer ``i``): per answer the
    baseline against the mean of its scored probes (one pair per answer), and the share of answers that some
    probe flips (see the module docstring). The pass rate under the probes is the mean over scored probes."""
    n = len(baseline)
    if any(len(p) != n for p in (*probes, *probe_passes)) or len(base_pass) != n:
        raise ValueError("every probe must cover the same answers as the baseline")
    merged: list[Scores] = []
    any_flip: list[bool | None] = []
    f2p = p2f = 0
    pass_probe: list[float] = []
    for i in range(n):
        scored = [k for k in range(len(probes)) if probes[k][i] is not None and probe_passes[k][i] is not None]
        if not scored or baseline[i] is None or base_pass[i] is None:
            merged.append(None if not scored else {m: math.fsum(float(probes[k][i][m]) for k in scored)  # type: ignore[index]
                                                   / len(scored) for m in metrics})
            any_flip.append(None)
            continue
        merged.append({m: math.fsum(float(probes[k][i][m]) for k in scored) / len(scored)  # type: ignore[index]
                       for m in metrics})
        verdicts = [bool(probe_passes[k][i]) for k in scored]
        base = bool(base_pass[i])
        any_flip.append(any(v != base for v in verdicts))
        f2p += (not base) and any(verdicts)
        p2f += base and not all(verdicts)
        pass_probe.append(sum(verdicts) / len(verdicts))
    shifts = {m: paired_difference(_values(baseline, m), _values(merged, m), n_boot=n_boot, seed=seed)
              for m in metrics}
    flips = np.array([f for f in any_flip if f is not None], dtype=bool)
    share, lo, hi = _share_ci(flips, n_boot, seed)
    bases = [bool(base_pass[i]) for i in range(n) if any_flip[i] is not None]
    return ProbeShift(probe=probe, family=family, answers=n, pairs=int(flips.size),
                      unscored_baseline=sum(s is None for s in baseline),
                      unscored_probe=sum(s is None for p in probes for s in p), shifts=shifts,
                      pass_baseline=float(np.mean(bases)) if bases else math.nan,
                      pass_probe=float(np.mean(pass_probe)) if pass_probe else math.nan, flip_share=share,
                      flip_ci=(lo, hi), fail_to_pass=int(f2p), pass_to_fail=int(p2f), mcnemar_p=math.nan, pooled=True)


@dataclass(frozen=True)
class Consistency:
    """Self-consistency of the baseline re-sampled (see the module docstring)."""

    answers: int
    samples: int  # samples asked per answer
    measured: int  # answers with at least two valid samples
    unscored_samples: int
    spread: dict[str, tuple[float, float, float]]  # per metric: mean population SD, 95 % bootstrap interval
    flip_share: float
    flip_ci: tuple[float, float]
    identical_share: float  # answers whose valid samples all give the same scores

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN as None at the caller)."""
        return {"answers": self.answers, "samples": self.samples, "measured": self.measured,
                "unscored_samples": self.unscored_samples,
                "spread": {m: {"mean": v[0], "ci": [v[1], v[2]]} for m, v in self.spread.items()},
                "flip_share": self.flip_share, "flip_ci": list(self.flip_ci), "identical_share": self.identical_share}


def self_consistency(samples: Sequence[Sequence[Scores]], passes: Sequence[Sequence[bool | None]],
                     metrics: Sequence[str], *, asked: int, n_boot: int = 2000, seed: int = 0) -> Consistency:
    """Self-consistency over answers: ``samples[i]`` the scores of answer ``i``'s samples (None: an unscored
    sample), ``passes[i]`` their pass verdicts, ``asked`` the samples asked per answer."""
    spreads: dict[str, list[float]] = {m: [] for m in metrics}
    flips: list[bool] = []
    identical: list[bool] = []
    unscored = 0
    for row, verdicts in zip(samples, passes, strict=True):
        valid = [(s, v) for s, v in zip(row, verdicts, strict=True) if s is not None and v is not None]
        unscored += len(row) - len(valid)
        if len(valid) < 2:
            continue
        for m in metrics:
            spreads[m].append(float(np.std([float(s[m]) for s, _ in valid])))  # population SD
        flips.append(len({v for _, v in valid}) > 1)
        identical.append(all(all(float(s[m]) == float(valid[0][0][m]) for m in metrics) for s, _ in valid))
    spread = {}
    for m in metrics:
        arr = np.array(spreads[m], dtype=float)
        spread[m] = _share_ci(arr, n_boot, seed) if arr.size else (math.nan, math.nan, math.nan)
    share, lo, hi = _share_ci(np.array(flips, dtype=bool), n_boot, seed)
    return Consistency(answers=len(samples), samples=asked, measured=len(flips), unscored_samples=unscored,
                       spread=spread, flip_share=share, flip_ci=(lo, hi),
                       identical_share=float(np.mean(identical)) if identical else math.nan)


#: What the family of the probes' correction is, in words (the tables' captions and the JSON's ``family``).
PROBE_FAMILY = ("every probe row's Wilcoxon test of the shift of overall and McNemar test of its pass flips, "
                "those with a p-value; the per-criterion shifts are not tested")


def probe_family_text(method: str, size: int) -> str:
    """The sentence stating the correction of a probes run and its family (:func:`correct_probes`)."""
    from judgekit.stats.multiple import family_text

    return family_text(method, size, PROBE_FAMILY)


def correct_probes(doc: Mapping[str, Any], method: str = "holm") -> dict[str, Any]:
    """The probes document ``doc`` (the JSON of :meth:`judgekit.api.probe.ProbeReport.to_dict`; ``None`` or nan
    where there is no p-value) with its p-values adjusted for multiple comparisons by ``method`` (``"holm"``,
    ``"bh"`` or ``"none"``; :func:`judgekit.stats.multiple.adjust_pvalues`), the family being every probe's
    ``shifts.overall.p_value`` and ``pass.mcnemar_p`` (see the module docstring). Sets on each probe
    ``shifts.overall.p_adjusted`` and ``pass.mcnemar_p_adjusted`` (None without a test), and on the document
    ``correction``, ``family_size`` (the tests in the family) and ``family`` (the sentence stating both).
    ``doc`` is not changed (the probes and the dicts changed are copies)."""
    from judgekit.stats.multiple import adjust_pvalues, check_correction

    method = check_correction(method)

    def num(x: Any) -> float:
        return math.nan if x is None else float(x)

    probes = [dict(p) for p in doc.get("probes") or []]
    raw = []
    for p in probes:
        raw += [num((p.get("shifts") or {}).get("overall", {}).get("p_value")),
                num((p.get("pass") or {}).get("mcnemar_p"))]
    adj = adjust_pvalues(raw, method) if raw else np.array([])
    size = int(np.sum(~np.isnan(adj)))

    def out(x: float) -> float | None:
        return None if math.isnan(x) else float(x)

    for k, p in enumerate(probes):
        shifts = dict(p.get("shifts") or {})
        if "overall" in shifts:
            shifts["overall"] = {**shifts["overall"], "p_adjusted": out(adj[2 * k])}
        p["shifts"] = shifts
        p["pass"] = {**(p.get("pass") or {}), "mcnemar_p_adjusted": out(adj[2 * k + 1])}
    return {**doc, "probes": probes, "correction": method, "family_size": size,
            "family": probe_family_text(method, size)}
