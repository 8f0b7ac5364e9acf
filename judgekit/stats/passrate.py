"""Pass rates with honest intervals: per-group rates with Wilson and bootstrap intervals.

"What share of each model's answers did the judge pass?" :func:`pass_rates` answers it per group (model,
category, condition, judge): counts, the rate over the scored answers, its Wilson interval and a percentile
bootstrap interval (optionally resampling whole items when an item appears several times in a group).
:func:`pass_rate` is the same computation for one array of verdicts. "What share would *people* pass?" is
answered by prediction-powered inference, in :mod:`judgekit.stats.ppi` (its names are re-exported here:
:func:`ppi_pass_rate`, :func:`ppi_pass_rates`, :func:`ppi_table`, :class:`PPIEstimate`).

Convention (the same as :mod:`judgekit.stats.aggregate`): a pass rate is ``passes / scored``. An ``unscored``
judgment (the judge's reply could not be parsed) is excluded and counted in ``unscored``: a parse failure is
never a pass nor a fail.

:func:`pass_rate_table` renders rich tables; :meth:`PassRate.to_dict` gives JSON-ready dicts (nan and inf become
None). The bootstrap is hand-written (a resample is a vector of draw counts, a block of resamples one matrix
product) so that its draws are those of :func:`judgekit.stats.robustness.bootstrap_mean_ci` (tested equal), the
cluster (item) bootstrap included; it is checked against a slow loop of the documented scheme.

References
----------
- E. B. Wilson (1927), "Probable inference, the law of succession, and statistical inference", JASA 22.
- B. Efron, R. Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13 (percentile interval).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from rich.table import Table

from judgekit.io.records import Judgment
from judgekit.stats._format import _ci, _pct, json_ready
from judgekit.stats.aggregate import wilson_interval
from judgekit.stats.ppi import PPIEstimate, ppi_pass_rate, ppi_pass_rates, ppi_table
from judgekit.stats.ppi import _ppi_core as _ppi_core  # imported from here by tests

__all__ = [
    "GROUP_FIELDS",
    "PPIEstimate",
    "PassRate",
    "json_ready",
    "pass_rate",
    "pass_rate_table",
    "pass_rates",
    "ppi_pass_rate",
    "ppi_pass_rates",
    "ppi_table",
]

#: The ``Judgment`` fields :func:`pass_rates` can group by.
GROUP_FIELDS = ("model", "category", "condition", "judge")
#: A missing group value is shown as this (as in :func:`judgekit.stats.aggregate.summarize`).
MISSING = "-"

_CHUNK = 1 << 22  # at most this many resampled indices are held in memory at once


# ---------------------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class PassRate:
    """The pass rate of one group of judgments (see :func:`pass_rates`).

    Attributes
    ----------
    by : tuple of str
        The fields grouped by, e.g. ``("model", "category")``.
    key : tuple of str
        This group's values of those fields (``"-"`` for a missing value).
    n : int
        Judgments in the group.
    scored, unscored : int
        Judgments with a verdict / without one (excluded from every figure below, only counted).
    passed : int
        Scored judgments that pass.
    rate : float
        ``passed / scored`` (nan when ``scored == 0``).
    wilson_low, wilson_high : float
        Wilson score interval of ``rate`` at ``confidence`` (nan when ``scored == 0``).
    boot_low, boot_high : float
        Percentile-bootstrap interval of ``rate`` (nan when ``scored == 0``).
    n_items : int
        Distinct item ids among the scored judgments.
    resampled : str
        The bootstrap's resampling unit: ``"answers"`` (the scored judgments, i.i.d.) or ``"items"``
        (cluster bootstrap: every scored judgment of an item id is drawn together).
    confidence : float
        Level of both intervals.
    n_resamples : int
        Bootstrap resamples.
    note : str
        Caveats: no scored answers, a degenerate bootstrap, item ids repeating in the group.
    """

    by: tuple[str, ...]
    key: tuple[str, ...]
    n: int
    scored: int
    unscored: int
    passed: int
    rate: float
    wilson_low: float
    wilson_high: float
    boot_low: float
    boot_high: float
    n_items: int
    resampled: str
    confidence: float
    n_resamples: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field; ``key`` becomes ``{field: value}``; nan becomes None."""
        d = json_ready(asdict(self))
        d["key"] = dict(zip(self.by, self.key, strict=True))
        return d


# ------------------------------------------------------------------------------------------ pass rates


# Hand-written: the draws of bootstrap_mean_ci (tested equal); scipy.stats.bootstrap is ~5x slower on small groups.
def _resample_ratio_ci(num: np.ndarray, den: np.ndarray, *, n_resamples: int, confidence: float,
                       rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of ``sum(c * num) / sum(c * den)`` over bootstrap count vectors ``c``.

    Each resample draws ``m = len(num)`` unit indices uniformly with replacement; ``c[i]`` is how often unit
    ``i`` was drawn. Indices come as ``rng.integers(0, m, size=(b, m))`` for consecutive blocks of
    ``b = max(1, min(n_resamples, 2**22 // m))`` resamples, exactly as in
    :func:`judgekit.stats.robustness.bootstrap_mean_ci` (with ``den`` all ones the two give the same numbers).
    Bounds: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles (``numpy.quantile``, linear).
    """
    m = num.size
    stats = np.empty(n_resamples)
    block = max(1, min(n_resamples, _CHUNK // m))
    for start in range(0, n_resamples, block):
        b = min(block, n_resamples - start)
        idx = rng.integers(0, m, size=(b, m))
        idx += (np.arange(b) * m)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * m).reshape(b, m).astype(float)
        stats[start:start + b] = (counts @ num) / (counts @ den)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _verdict(j: Judgment, threshold: float | None) -> bool:
    """The pass/fail verdict of a scored judgment: ``passed``, or ``overall >= threshold`` when given (a failed
    gating fact check fails it either way; ``passed`` has it already)."""
    if threshold is None:
        if j.passed is None:
            raise ValueError(f"scored judgment of item {j.id!r} (model {j.model!r}) has no pass verdict; "
                             "give threshold= to derive it from overall")
        return j.passed
    if j.overall is None:
        raise ValueError(f"scored judgment of item {j.id!r} (model {j.model!r}) has no overall score")
    return j.overall >= threshold and not j.gate_failed


def _check_rate_args(n_resamples: int, confidence: float, seed: int, resample: str) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if resample not in ("auto", "answers", "items"):
        raise ValueError(f"resample must be 'auto', 'answers' or 'items', got {resample!r}")


def _rate_row(by: tuple[str, ...], key: tuple[str, ...], n: int, scored: Sequence[tuple[str, bool]], *,
              n_resamples: int, confidence: float, seed: int, resample: str) -> PassRate:
    """The :class:`PassRate` of one group: ``n`` judgments of which ``scored`` (item id, verdict) have a verdict
    (the computation of :func:`pass_rates`, for one group)."""
    m = len(scored)
    passed = sum(v for _, v in scored)
    per_item: dict[str, list[int]] = {}
    for i, v in scored:
        per_item.setdefault(i, [0, 0])
        per_item[i][0] += v
        per_item[i][1] += 1
    repeats = len(per_item) < m
    unit = ("items" if repeats else "answers") if resample == "auto" else resample
    notes = []
    rate = passed / m if m else math.nan
    wl, wh = wilson_interval(passed, m, confidence=confidence)
    bl = bh = math.nan
    if m == 0:
        notes.append("no scored answers")
    else:
        rng = np.random.default_rng(seed)  # a fresh generator per group: see the seed parameter
        if unit == "items":
            ids = sorted(per_item)
            num = np.array([per_item[i][0] for i in ids], dtype=float)
            den = np.array([per_item[i][1] for i in ids], dtype=float)
        else:
            num = np.sort(np.array([v for _, v in scored], dtype=float))
            den = np.ones(m)
        bl, bh = _resample_ratio_ci(num, den, n_resamples=n_resamples, confidence=confidence, rng=rng)
        if passed in (0, m):
            notes.append("every answer passes or every one fails: the bootstrap interval is a point")
        if repeats:
            notes.append(f"{m} answers to {len(per_item)} items: Wilson assumes independent answers"
                         + ("" if unit == "items" else ", and so does the answer bootstrap"))
    return PassRate(by=by, key=key, n=n, scored=m, unscored=n - m, passed=passed, rate=rate,
                    wilson_low=wl, wilson_high=wh, boot_low=bl, boot_high=bh, n_items=len(per_item),
                    resampled=unit, confidence=confidence, n_resamples=n_resamples, note="; ".join(notes))


def pass_rates(judgments: Iterable[Judgment], *, by: Sequence[str] = ("model",), n_resamples: int = 2000,
               confidence: float = 0.95, seed: int = 0, resample: Literal["auto", "answers", "items"] = "auto",
               threshold: float | None = None) -> list[PassRate]:
    """Pass rate per group of judgments, with a Wilson and a percentile-bootstrap interval.

    Parameters
    ----------
    judgments : iterable of Judgment
        Judgments of any models, categories, conditions and judges.
    by : sequence of str, default ("model",)
        Fields to group by, any of ``"model"``, ``"category"``, ``"condition"``, ``"judge"`` (``()`` pools
        everything into one group). A missing value (None) groups as ``"-"``.
    n_resamples : int, default 2000
        Bootstrap resamples per group.
    confidence : float, default 0.95
        Level of both intervals.
    seed : int, default 0
        Every group is resampled with a fresh ``numpy.random.default_rng(seed)``, and its units are put in a
        canonical order first (answers: fails then passes; items: by id), so a row depends only on its own
        data and the seed: not on the input order nor on the other groups.
    resample : {"auto", "answers", "items"}, default "auto"
        Resampling unit of the bootstrap. ``"answers"``: the scored judgments, i.i.d. ``"items"``: a cluster
        bootstrap by item id (below). ``"auto"``: items when some item id occurs more than once among the
        group's scored judgments, answers otherwise.
    threshold : float or None, default None
        None: a scored judgment passes when ``Judgment.passed`` (the rubric's pass rule). A number: it
        passes when ``overall >= threshold`` (e.g. 3 for "passable or better" on a 1-5 scale).

    Returns
    -------
    list of PassRate
        One row per group, sorted by key.

    Notes
    -----
    **Rate.** ``rate = passed / scored``; unscored judgments are excluded and counted (``unscored``).

    **Wilson interval** (:func:`judgekit.stats.aggregate.wilson_interval`): with ``p = rate``, ``m = scored`` and
    ``z`` the ``(1 + confidence) / 2`` normal quantile,
    ``(p + z²/2m ± z sqrt(p(1-p)/m + z²/4m²)) / (1 + z²/m)``. It assumes independent answers.

    **Bootstrap interval.** ``n_resamples`` times, draw the resampling units with replacement (as many as
    there are) and recompute the rate; the bounds are the ``(1 ∓ confidence) / 2`` quantiles of those
    rates (linear interpolation). Vectorised: a resample is a vector of draw counts, the rates of a block of
    resamples are one matrix product. With ``"answers"`` the resampled rate is ``sum(c_i y_i) / m``
    (``y_i`` the 0/1 verdicts; the same draws as :func:`judgekit.stats.robustness.bootstrap_mean_ci`). The
    percentile interval collapses to a point when every answer passes (or fails), and is somewhat too
    narrow for small groups; the Wilson interval is the safer figure there.

    **Cluster bootstrap by item.** Grouping by model alone pools a model's answers to the same question
    under several conditions (clean and degraded copies) or by several judges. Those answers are not
    independent (a hard question is hard in every condition), so the Wilson interval and the i.i.d.
    bootstrap are too narrow. With ``"items"`` the units are the item ids: item ``k`` contributes ``s_k``
    passes out of ``m_k`` scored judgments, and a resample's rate is ``sum(c_k s_k) / sum(c_k m_k)``
    (the ratio estimator; every item with a scored judgment has ``m_k >= 1``). The row's note then says
    that the Wilson interval assumes independent answers. Items are exchangeable units here; answers of
    different models to the same question (grouping by category) are clustered the same way.

    Examples
    --------
    >>> from judgekit.io.records import Judgment
    >>> js = [Judgment(id=str(i), model="m", judge="j", status="scored", overall=float(s), passed=s >= 3)
    ...       for i, s in enumerate([4, 2, 3, 5])]
    >>> r = pass_rates(js)[0]
    >>> r.passed, r.scored, r.rate
    (3, 4, 0.75)
    """
    by = tuple(by)
    bad = [b for b in by if b not in GROUP_FIELDS]
    if bad:
        raise ValueError(f"cannot group by {bad}: choose from {list(GROUP_FIELDS)}")
    if len(set(by)) != len(by):
        raise ValueError(f"by names a field twice: {list(by)}")
    _check_rate_args(n_resamples, confidence, seed, resample)

    groups: dict[tuple[str, ...], list[Judgment]] = {}
    for j in judgments:
        key = tuple(MISSING if getattr(j, b) is None else str(getattr(j, b)) for b in by)
        groups.setdefault(key, []).append(j)

    rows = []
    for key in sorted(groups):
        js = groups[key]
        scored = [(j.id, _verdict(j, threshold)) for j in js if j.status == "scored"]
        rows.append(_rate_row(by, key, len(js), scored, n_resamples=n_resamples, confidence=confidence, seed=seed,
                              resample=resample))
    return rows


def pass_rate(passed: Any, *, items: Any = None, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
              resample: Literal["auto", "answers", "items"] = "auto") -> PassRate:
    """The pass rate of one array of verdicts, with a Wilson and a percentile-bootstrap interval.

    The computation of :func:`pass_rates` for a single group (its Notes describe the intervals), on arrays
    rather than :class:`~judgekit.io.records.Judgment` records.

    Parameters
    ----------
    passed : array-like of shape (n,)
        One verdict per answer: bool or 0/1; ``None`` (or NaN) for an unscored answer, which is excluded from
        the rate and counted in ``unscored``.
    items : array-like of shape (n,), optional
        The item (question) id of each answer, for the cluster bootstrap; default every answer its own item.
    n_resamples, confidence, seed, resample
        As in :func:`pass_rates`.

    Returns
    -------
    PassRate
        With ``by == ()`` and ``key == ()``.

    Examples
    --------
    >>> r = pass_rate([True, False, True, True, None])
    >>> r.passed, r.scored, r.unscored, r.rate
    (3, 4, 1, 0.75)
    """
    _check_rate_args(n_resamples, confidence, seed, resample)
    values = list(passed)
    ids = [str(i) for i in range(len(values))] if items is None else [str(i) for i in items]
    if len(ids) != len(values):
        raise ValueError(f"items must have one id per verdict ({len(values)}), got {len(ids)}")
    scored = []
    for i, v in zip(ids, values, strict=True):
        if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
            continue
        if not (isinstance(v, bool | np.bool_) or v in (0, 1)):
            raise ValueError(f"passed must hold verdicts (bool or 0/1, None for unscored), got {v!r}")
        scored.append((i, bool(v)))
    return _rate_row((), (), len(values), scored, n_resamples=n_resamples, confidence=confidence, seed=seed,
                     resample=resample)


# ---------------------------------------------------------------------------------------------- rendering


def pass_rate_table(rows: Sequence[PassRate], *, title: str | None = "Pass rates") -> Table:
    """A rich table of :func:`pass_rates` rows: the group fields, n, scored, unscored, passed, rate, the
    Wilson and the bootstrap interval (in percent), the bootstrap's unit, and notes when any row has one."""
    by = rows[0].by if rows else ("model",)
    conf = rows[0].confidence if rows else 0.95
    caption = (f"rate = passed / scored; unscored answers excluded (a parse failure is neither pass nor fail). "
               f"{100 * conf:g} % intervals: Wilson score, and percentile bootstrap"
               + (f" ({rows[0].n_resamples} resamples; unit: answers, or items when an item repeats)"
                  if rows else "") + ".")
    t = Table(title=title, caption=caption, caption_justify="left")
    for b in by:
        t.add_column(b.capitalize())
    for name in ("n", "scored", "unscored", "passed", "rate", "Wilson CI", "bootstrap CI"):
        t.add_column(name, justify="right")
    t.add_column("unit")
    show_note = any(r.note for r in rows)
    if show_note:
        t.add_column("note")
    for r in rows:
        cells = [*r.key, str(r.n), str(r.scored), str(r.unscored), str(r.passed), _pct(r.rate),
                 _ci(r.wilson_low, r.wilson_high), _ci(r.boot_low, r.boot_high), r.resampled]
        t.add_row(*cells, *([r.note] if show_note else []))
    return t
