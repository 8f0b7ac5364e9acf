"""Prediction-powered inference (PPI) of the *human* pass rate from many judge verdicts and a few human labels.

"What share would *people* pass?" The judge is cheap and judges every answer but is biased; people are accurate
but label only a small random subset. PPI (Angelopoulos et al. 2023) combines both into an estimate of the human
pass rate whose interval is valid whatever the judge's bias, and PPI++ (Angelopoulos, Duchi, Zrnic 2023) tunes
how much the judge is trusted so that the interval is never (asymptotically) wider than the human-only one.

- :func:`ppi_pass_rate`: one estimate from arrays of verdicts; :func:`ppi_pass_rates`: one per group, from
  verdicts keyed by answer; :func:`ppi_table` renders them (rich), :meth:`PPIEstimate.to_dict` gives a
  JSON-ready dict (nan and inf become None).

Conventions: verdicts are bools or 0/1; sample variances use ddof=1 (ppi_py uses ddof=0); the interval is the
CLT interval clipped to [0, 1]; the human-only and judge-only baselines use the Wilson interval of
:func:`judgekit.stats.aggregate.wilson_interval`. Hand-written from sufficient statistics (the four cells of the
labelled 2x2 table and the unlabelled pass count) rather than with ``ppi_py``, which is not a dependency and
uses ddof=0; the formulas are checked by hand in exact fractions and by a seeded coverage simulation
(tests/test_passrate.py).

References
----------
- A. N. Angelopoulos, S. Bates, C. Fannjiang, M. I. Jordan, T. Zrnic (2023), "Prediction-powered
  inference", Science 382(6671), 669-674 (arXiv:2301.09633).
- A. N. Angelopoulos, J. C. Duchi, T. Zrnic (2023), "PPI++: Efficient prediction-powered inference",
  arXiv:2311.01453.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np
from rich.table import Table
from scipy.stats import norm

from judgekit.stats._format import _ci, _pct, json_ready
from judgekit.stats.aggregate import wilson_interval

__all__ = ["PPIEstimate", "ppi_pass_rate", "ppi_pass_rates", "ppi_table"]

K = TypeVar("K", bound=Hashable)  # the key of an answer in ppi_pass_rates


@dataclass(frozen=True)
class PPIEstimate:
    """A prediction-powered estimate of the human pass rate, with its baselines (see :func:`ppi_pass_rate`).

    Attributes
    ----------
    group : Any
        The group (e.g. the model) for :func:`ppi_pass_rates`; None from :func:`ppi_pass_rate`.
    estimate : float
        The PPI (or PPI++) estimate of the human pass rate, ``theta_lambda``.
    ci_low, ci_high : float
        Its CLT interval at ``confidence``, clipped to [0, 1].
    std_error : float
        ``sqrt(var_hat)``, the estimated standard error of ``estimate``.
    lam : float
        The power-tuning weight lambda (1.0 for classic PPI).
    power_tuning : bool
        Whether ``lam`` was tuned (PPI++) or fixed at 1 (classic PPI).
    n_labeled, n_unlabeled : int
        ``n`` answers with a human label (and a judge verdict) and ``N`` answers with a judge verdict only.
    human_rate, human_ci_low, human_ci_high : float
        The human-only (classical) estimate: the share of the ``n`` labelled answers that people pass, with
        its Wilson interval. What one would report without the judge.
    judge_rate, judge_ci_low, judge_ci_high : float
        The judge-only rate over all ``n + N`` answers, with its Wilson interval. This estimates the *judge's*
        pass rate: as an estimate of the human rate it is biased by the judge's errors, and its interval does
        not cover that bias.
    correction : float
        The rectifier as used, ``mean(Y - lam * f(X))`` over the labelled answers (with ``lam = 1``: the
        human rate minus the judge rate on the labelled subset; negative for a lenient judge).
    agreement : float
        Share of the labelled answers on which judge and people agree.
    n_effective : float
        ``s2_Y / var_hat``: how many human labels a human-only (CLT) estimate would need for the variance of
        this PPI estimate (``s2_Y`` is the ddof=1 sample variance of the human labels). ``inf`` when
        ``var_hat == 0 < s2_Y``; nan when the human labels are all equal.
    confidence : float
        Level of the intervals.
    note : str
        Caveats: clipping, a degenerate variance, a constant judge.
    """

    group: Any
    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    lam: float
    power_tuning: bool
    n_labeled: int
    n_unlabeled: int
    human_rate: float
    human_ci_low: float
    human_ci_high: float
    judge_rate: float
    judge_ci_low: float
    judge_ci_high: float
    correction: float
    agreement: float
    n_effective: float
    confidence: float
    note: str = ""

    @property
    def gain(self) -> float:
        """``n_effective / n_labeled``: the factor by which the judge multiplies the human labels' worth."""
        return self.n_effective / self.n_labeled if self.n_labeled else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``gain``; nan and inf become None, tuples lists."""
        d = json_ready(asdict(self))
        d["gain"] = json_ready(self.gain)
        return d


def _binary(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D int array of 0/1 verdicts (bools, or numbers equal to 0 or 1)."""
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.dtype == object or not (a.dtype == bool or np.issubdtype(a.dtype, np.number)):
        raise ValueError(f"{name} must hold pass/fail verdicts (bool or 0/1), got dtype {a.dtype}")
    if a.size and not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name} must hold pass/fail verdicts (bool or 0/1); found other values")
    return a.astype(np.int64)


def _var01(k: int, m: int) -> float:
    """Sample variance (ddof=1) of ``m`` 0/1 values of which ``k`` are 1: ``k (m - k) / (m (m - 1))``."""
    return k * (m - k) / (m * (m - 1)) if m >= 2 else math.nan


_F = np.array([0.0, 0.0, 1.0, 1.0])  # the judge's verdict in the cells (f, y) = 00, 01, 10, 11
_Y = np.array([0.0, 1.0, 0.0, 1.0])  # the human verdict in those cells


# Hand-written: ppi_py is not a dependency (and uses ddof=0); vectorised for the coverage simulation.
def _ppi_core(k_unl: Any, n_unl: Any, cells: Any, *, z: float, power_tuning: bool) -> dict[str, np.ndarray]:
    """Vectorised PPI / PPI++ from sufficient statistics (the formulas of :func:`ppi_pass_rate`).

    ``k_unl``: judge passes among the ``n_unl`` unlabelled answers, shape (...,); ``cells``: the labelled
    counts of ``(f, y)`` = 00, 01, 10, 11, shape (..., 4). Returns arrays: ``theta_raw`` (unclipped),
    ``theta``, ``low``, ``high`` (clipped to [0, 1]), ``se``, ``var``, ``lam``, ``correction``. The variance
    is nan where a side has fewer than 2 answers; with fewer than 2 labels lambda is not tuned (1).
    """
    k = np.asarray(k_unl, dtype=float)
    big_n = np.asarray(n_unl, dtype=float)
    w = np.asarray(cells, dtype=float)
    n = w.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f_bar, y_bar = w @ _F / n, w @ _Y / n
        # c_Yf (ddof=1) over the labelled pairs; s2_f (ddof=1) over all n + N judge verdicts
        cov = np.sum(w * (_F - f_bar[..., None]) * (_Y - y_bar[..., None]), axis=-1) / (n - 1)
        k_all, m_all = k + w @ _F, big_n + n
        var_f_all = k_all * (m_all - k_all) / (m_all * (m_all - 1))
        if power_tuning:
            lam = np.clip(cov / ((1 + n / big_n) * var_f_all), 0.0, 1.0)
            lam = np.where(var_f_all == 0, 0.0, lam)  # a constant judge carries no information
            lam = np.where(n < 2, 1.0, lam)  # no covariance from one label: untuned
        else:
            lam = np.ones_like(n)
        d = _Y - lam[..., None] * _F  # the rectifier Y - lambda f in each cell
        d_bar = np.sum(w * d, axis=-1) / n
        var_d = np.sum(w * (d - d_bar[..., None]) ** 2, axis=-1) / (n - 1)
        var_unl = np.where(lam == 0, 0.0, lam**2 * k * (big_n - k) / (big_n * (big_n - 1)))
        theta = lam * k / big_n + d_bar
        var = var_unl / big_n + var_d / n
        se = np.sqrt(var)
    return {"theta_raw": theta, "theta": np.clip(theta, 0.0, 1.0), "low": np.clip(theta - z * se, 0.0, 1.0),
            "high": np.clip(theta + z * se, 0.0, 1.0), "se": se, "var": var, "lam": lam, "correction": d_bar}


def _ppi_estimate(k_unl: int, n_unl: int, cells: np.ndarray, *, confidence: float, power_tuning: bool,
                  group: Any = None) -> PPIEstimate:
    """One :class:`PPIEstimate` (with notes and baselines) from sufficient statistics; see :func:`_ppi_core`."""
    z = float(norm.ppf((1 + confidence) / 2))
    r = {key: float(v) for key, v in _ppi_core(k_unl, n_unl, cells, z=z, power_tuning=power_tuning).items()}
    n, big_n = int(cells.sum()), n_unl
    f_lab, y_lab = int(cells[2] + cells[3]), int(cells[1] + cells[3])
    notes: list[str] = []
    if power_tuning and n < 2:
        notes.append("fewer than 2 labels: lambda not tuned (1)")
    elif power_tuning and _var01(k_unl + f_lab, big_n + n) == 0:
        notes.append("the judge gives one verdict to every answer: it carries no information (lambda = 0)")
    se, theta = r["se"], r["theta_raw"]
    if math.isnan(se):
        notes.append("fewer than 2 answers on a side: no variance, no interval")
    elif se == 0:
        notes.append("zero estimated variance: the CLT interval is a point; see the human-only Wilson interval")
    if not 0 <= theta <= 1:
        notes.append(f"estimate {theta:.4f} clipped to [0, 1]")
    if not math.isnan(se) and (theta - z * se < 0 or theta + z * se > 1):
        notes.append("interval clipped to [0, 1]")
    s2_y, var = _var01(y_lab, n), r["var"]
    n_eff = math.nan  # human labels all equal, or no variance: no comparison
    if s2_y > 0 and not math.isnan(var):
        n_eff = s2_y / var if var > 0 else math.inf
    h_low, h_high = wilson_interval(y_lab, n, confidence=confidence)
    j_low, j_high = wilson_interval(k_unl + f_lab, big_n + n, confidence=confidence)
    return PPIEstimate(group=group, estimate=r["theta"], ci_low=r["low"], ci_high=r["high"], std_error=se,
                       lam=r["lam"], power_tuning=power_tuning, n_labeled=n, n_unlabeled=big_n,
                       human_rate=y_lab / n, human_ci_low=h_low, human_ci_high=h_high,
                       judge_rate=(k_unl + f_lab) / (big_n + n), judge_ci_low=j_low, judge_ci_high=j_high,
                       correction=r["correction"], agreement=float(cells[0] + cells[3]) / n, n_effective=n_eff,
                       confidence=confidence, note="; ".join(notes))


def ppi_pass_rate(judge_unlabeled: Any, judge_labeled: Any, human_labeled: Any, *, confidence: float = 0.95,
                  power_tuning: bool = True) -> PPIEstimate:
    """Prediction-powered estimate of the human pass rate (PPI; PPI++ with ``power_tuning``).

    Parameters
    ----------
    judge_unlabeled : array-like of bool or 0/1, shape (N,)
        The judge's verdicts ``f(X~_i)`` on the ``N`` answers that people did *not* label.
    judge_labeled : array-like of bool or 0/1, shape (n,)
        The judge's verdicts ``f(X_i)`` on the ``n`` answers that people labelled.
    human_labeled : array-like of bool or 0/1, shape (n,)
        The human verdicts ``Y_i`` on the same answers, in the same order.
    confidence : float, default 0.95
        Level of the intervals.
    power_tuning : bool, default True
        True: PPI++, with the variance-minimising ``lambda`` estimated from the data. False: classic PPI
        (``lambda = 1``).

    Returns
    -------
    PPIEstimate
        The estimate and its interval, ``lambda``, the human-only and judge-only baselines, the effective
        sample size.

    Raises
    ------
    ValueError
        When ``n == 0`` or ``N == 0``, the labelled arrays differ in length, or a value is not a verdict.

    Notes
    -----
    **Setting** (Angelopoulos et al. 2023, as in the paper): a labelled sample ``(X_i, Y_i)``, ``i = 1..n``,
    and an *independent* unlabelled sample ``X~_i``, ``i = 1..N``, both i.i.d. from the same population
    of answers; the target is the population's human pass rate ``theta = E[Y]``. In practice: judge every
    answer, have people label a *uniform random* subset, and pass the judge's verdicts on the *other*
    answers as ``judge_unlabeled`` (the two samples are disjoint; the variance below relies on their
    independence). If the target is the human pass rate of exactly these ``n + N`` answers (a finite
    population) the interval is slightly conservative.

    **Estimate.** With ``lambda = 1`` this is classic PPI::

        theta_lambda = lambda * mean(f(X~)) + mean(Y - lambda * f(X))

    i.e. the judge's rate on the unlabelled answers plus the rectifier (the judge's average error on the
    labelled ones). It is unbiased for every ``lambda``, however biased the judge.

    **Variance and interval.** With sample variances ``s2`` using ddof=1 (the unbiased estimator; ppi_py
    uses ddof=0, so its intervals are narrower by a factor of about ``1 - 1/(2n)``)::

        sigma2_f     = lambda² * s2(f(X~_1..N))          (over the unlabelled answers)
        sigma2_Delta = s2(Y_i - lambda * f(X_i), i=1..n)  (over the labelled answers)
        var_hat      = sigma2_f / N + sigma2_Delta / n
        interval     = theta_lambda ± z * sqrt(var_hat),  z = Phi^-1((1 + confidence) / 2)

    The interval (and, rarely, the estimate) is clipped to [0, 1], which never lowers coverage since the
    rate lies in [0, 1]; the note says so. It is a CLT interval: valid asymptotically, approximate for small
    ``n`` or rates near 0 or 1; when every variance is 0 (e.g. all labels and verdicts pass) it collapses to
    a point, and the human-only Wilson interval is the honest figure.

    **Power tuning** (PPI++, Angelopoulos, Duchi, Zrnic 2023, mean estimation): ``var_hat`` as a function of
    ``lambda`` is minimised by ``lambda* = Cov(Y, f) / ((1 + n/N) Var(f))``. Estimated as::

        lambda = clip(c_Yf / ((1 + n/N) * s2_f), 0, 1)

    with ``c_Yf`` the ddof=1 sample covariance of ``(Y_i, f(X_i))`` over the labelled answers and ``s2_f``
    the ddof=1 sample variance of the judge's verdicts over all ``n + N`` answers (as in ppi_py). ``lambda``
    is then plugged in as if fixed (asymptotically valid, since it converges). ``lambda = 0`` gives the
    human-only mean; ``lambda = 1`` classic PPI. A judge that gives every answer the same verdict has
    ``s2_f = 0``: ``lambda = 0`` (any ``lambda`` gives the same estimate and variance then).

    **Effective sample size.** ``n_effective = s2(Y) / var_hat`` (ddof=1): the number of human labels a
    human-only CLT estimate (variance ``s2(Y) / n``) would need to be as precise; ``gain = n_effective / n``.

    **Baselines.** ``human_rate``: ``mean(Y)`` with its Wilson interval (the classical estimate).
    ``judge_rate``: the judge's pass rate over all ``n + N`` answers with its Wilson interval; it estimates
    the judge's rate, not the human one, so it misses the judge's bias.

    **When to use PPI.** The judge is cheap but biased (e.g. lenient), people are accurate but few. PPI's
    interval for the human pass rate is valid *whatever the judge's bias*, provided the labelled subset is
    a uniform random sample of the same population of answers as the unlabelled ones. It is narrower than
    the human-only interval when the judge agrees with people (the rectifier then varies little), by up to
    a factor of about ``sqrt(n / (n + N))`` for a perfect judge. With a poor judge it degrades gracefully:
    power tuning drives ``lambda`` towards 0 and the interval to about the human-only one (PPI++ is never
    worse asymptotically; classic PPI with a useless judge can be wider than human-only). It does *not*
    fix a non-random labelled subset: labelling the answers that look hardest, the first ones, or those the
    judge could not parse breaks the guarantee. Compute it per model (:func:`ppi_pass_rates`): the judge's
    bias may differ between models.

    Examples
    --------
    >>> e = ppi_pass_rate([1, 1, 1, 0, 1, 0], [1, 1, 0, 1], [1, 0, 0, 1], power_tuning=False)
    >>> round(e.estimate, 4)  # 4/6 + mean([0, -1, 0, 0])
    0.4167
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    f_unl = _binary(judge_unlabeled, "judge_unlabeled")
    f_lab = _binary(judge_labeled, "judge_labeled")
    y_lab = _binary(human_labeled, "human_labeled")
    if f_lab.size != y_lab.size:
        raise ValueError(f"judge_labeled and human_labeled differ in length: {f_lab.size} vs {y_lab.size}")
    if y_lab.size == 0:
        raise ValueError("no human labels: PPI needs a labelled random subset (n >= 1)")
    if f_unl.size == 0:
        raise ValueError("no unlabelled answers: with every answer labelled, use the human-only rate")
    cells = np.bincount(2 * f_lab + y_lab, minlength=4)
    return _ppi_estimate(int(f_unl.sum()), int(f_unl.size), cells, confidence=confidence, power_tuning=power_tuning)


def _sort_key(g: Any) -> tuple[str, str]:
    return (type(g).__name__, str(g))


def ppi_pass_rates(judge_pass: Mapping[K, bool], human_pass: Mapping[K, bool], groups: Mapping[K, Any], *,
                   confidence: float = 0.95, power_tuning: bool = True) -> list[PPIEstimate]:
    """:func:`ppi_pass_rate` per group, from verdicts keyed by answer.

    Parameters
    ----------
    judge_pass : mapping key -> bool
        The judge's verdict on every answer (a key identifies one answer, e.g. ``(id, model, condition)``).
        Unscored answers must be left out (their verdict is unknown); the estimate then concerns the answers
        the judge could score.
    human_pass : mapping key -> bool
        Human verdicts on a subset of those answers. Its keys must be a subset of ``judge_pass``'s, and the
        subset should be a *uniform random sample* of the judged answers (within each group): PPI is valid
        whatever the judge's bias, but not for a hand-picked subset.
    groups : mapping key -> group
        The group of every judged answer (e.g. its model); keys not judged are ignored.
    confidence, power_tuning
        As in :func:`ppi_pass_rate`.

    Returns
    -------
    list of PPIEstimate
        One per group that has judged answers, sorted by group. A group with no human label, or with every
        answer labelled, gets a row of nan estimates (counts and the judge-only or human-only rate given)
        and a note saying why.

    Notes
    -----
    Following the paper's setting (independent labelled and unlabelled samples), within a group the
    labelled sample is the answers with a human label and the unlabelled sample is the judged answers
    *without* one (not all judged answers): ``N`` + ``n`` = the group's judged answers.
    """
    missing = [k for k in human_pass if k not in judge_pass]
    if missing:
        raise ValueError(f"{len(missing)} human-labelled answers have no judge verdict (human labels must be a "
                         f"subset of the judged answers), e.g. {missing[:5]}")
    ungrouped = [k for k in judge_pass if k not in groups]
    if ungrouped:
        raise ValueError(f"{len(ungrouped)} judged answers have no group, e.g. {ungrouped[:5]}")
    for name, d in (("judge_pass", judge_pass), ("human_pass", human_pass)):
        bad = [k for k, v in d.items() if not (isinstance(v, bool | np.bool_) or v in (0, 1))]
        if bad:
            raise ValueError(f"{name} must map keys to pass/fail (bool); not so for e.g. {bad[:5]} "
                             "(leave unscored answers out)")

    counts: dict[Any, tuple[list[int], np.ndarray]] = {}
    for k, f in judge_pass.items():
        unl, cells = counts.setdefault(groups[k], ([0, 0], np.zeros(4, dtype=np.int64)))
        if k in human_pass:
            cells[2 * int(bool(f)) + int(bool(human_pass[k]))] += 1
        else:
            unl[0] += int(bool(f))
            unl[1] += 1

    try:
        order = sorted(counts)
    except TypeError:  # groups of mixed types
        order = sorted(counts, key=_sort_key)
    out = []
    for g in order:
        (k_unl, n_unl), cells = counts[g]
        n = int(cells.sum())
        if n and n_unl:
            out.append(_ppi_estimate(k_unl, n_unl, cells, confidence=confidence, power_tuning=power_tuning,
                                     group=g))
            continue
        nan = math.nan
        f_all = k_unl + int(cells[2] + cells[3])
        y_lab = int(cells[1] + cells[3])
        h_low, h_high = wilson_interval(y_lab, n, confidence=confidence)
        j_low, j_high = wilson_interval(f_all, n_unl + n, confidence=confidence)
        note = ("no human labels in this group: PPI needs a labelled random subset" if not n
                else "every judged answer is labelled: use the human-only rate")
        out.append(PPIEstimate(group=g, estimate=nan, ci_low=nan, ci_high=nan, std_error=nan, lam=nan,
                               power_tuning=power_tuning, n_labeled=n, n_unlabeled=n_unl,
                               human_rate=y_lab / n if n else nan, human_ci_low=h_low, human_ci_high=h_high,
                               judge_rate=f_all / (n_unl + n), judge_ci_low=j_low, judge_ci_high=j_high,
                               correction=nan, agreement=float(cells[0] + cells[3]) / n if n else nan,
                               n_effective=nan, confidence=confidence, note=note))
    return out


def _group_cell(g: Any) -> str:
    if g is None:
        return "-"
    return " / ".join(str(x) for x in g) if isinstance(g, tuple) else str(g)


def ppi_table(estimates: Sequence[PPIEstimate], *, title: str | None = "Human pass rate: prediction-powered"
              ) -> Table:
    """A rich table of :class:`PPIEstimate` rows: group, n labelled, N unlabelled, judge-only, human-only
    and PPI rates with their intervals (in percent), lambda, agreement, effective n (gain), and notes when
    any row has one."""
    conf = estimates[0].confidence if estimates else 0.95
    caption = (f"{100 * conf:g} % intervals. judge-only: the judge's rate on all answers (Wilson; misses the "
               "judge's bias). human-only: the labelled random subset (Wilson). PPI: judge on all answers, "
               "rectified by the labelled subset (CLT; λ = 1 classic, tuned = PPI++). n eff: human labels a "
               "human-only estimate would need for the same precision.")
    t = Table(title=title, caption=caption, caption_justify="left")
    t.add_column("Group")
    for name in ("n", "N", "judge-only", "human-only", "PPI", "λ", "agree", "n eff"):
        t.add_column(name, justify="right")
    show_note = any(e.note for e in estimates)
    if show_note:
        t.add_column("note")
    for e in estimates:
        n_eff = "-" if math.isnan(e.n_effective) else (
            "inf" if math.isinf(e.n_effective) else f"{e.n_effective:.0f} (x{e.gain:.2f})")
        cells = [_group_cell(e.group), str(e.n_labeled), str(e.n_unlabeled),
                 f"{_pct(e.judge_rate)} {_ci(e.judge_ci_low, e.judge_ci_high)}",
                 f"{_pct(e.human_rate)} {_ci(e.human_ci_low, e.human_ci_high)}",
                 f"[bold]{_pct(e.estimate)}[/] {_ci(e.ci_low, e.ci_high)}",
                 "-" if math.isnan(e.lam) else f"{e.lam:.2f}", _pct(e.agreement), n_eff]
        t.add_row(*cells, *([e.note] if show_note else []))
    return t
