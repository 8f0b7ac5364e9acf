"""Agreement between a judge and people, and among people: pure functions, arrays in, numbers out.

Modules (each docstring states its conventions and references)
--------------------------------------------------------------
- :mod:`~judgekit.stats.agreement.paired`: :func:`percent_agreement` (exact or within a tolerance),
  :func:`pass_agreement`, :func:`cohen_kappa` (unweighted, linear, quadratic).
- :mod:`~judgekit.stats.agreement.multirater`: :func:`fleiss_kappa`, :func:`krippendorff_alpha` (nominal,
  ordinal, interval, ratio).
- :mod:`~judgekit.stats.agreement.intraclass`: :func:`icc` (Shrout & Fleiss / McGraw & Wong forms).
- :mod:`~judgekit.stats.agreement.correlations`: :func:`correlation` at three levels — ``sample`` (all pairs
  pooled), ``summary`` (within each group, then averaged: G-Eval's convention), ``system`` (per-system means) —
  and the shorthands :func:`pearson`, :func:`spearman`, :func:`kendall`.
- :mod:`~judgekit.stats.agreement.bootstrap`: :func:`bootstrap_ci` (percentile or BCa, items or whole groups)
  and the resampling scheme shared by a report's statistics.
- :mod:`~judgekit.stats.agreement.weighted`, :mod:`~judgekit.stats.agreement.weighted_corr`: every statistic as
  a function of resample weights (what makes the bootstrap of a whole report fast).
- :mod:`~judgekit.stats.agreement.ceiling`: :func:`inter_human_ceiling` (leave one rater out).
- :mod:`~judgekit.stats.agreement.report`: :func:`agreement_report`, the entry point the CLI calls, and
  :class:`AgreementReport`.

Conventions (the whole package)
-------------------------------
- A **ratings matrix** is ``items x raters`` (rows are items, columns are raters), converted to float; ``NaN``
  marks a missing rating.
- **Paired functions** take two 1-D arrays of equal length and first drop every pair where either side is
  ``NaN``; they return ``nan`` when no pair is left.
- **Validation**: a wrong shape, unequal lengths, an infinite value, a value outside ``labels``, an unknown option
  raise a ``ValueError`` that names the argument. A statistic that is *undefined* on valid input is ``nan``,
  never an exception (the one exception, Krippendorff's alpha = 1.0 on identical values, is documented there).

Imports: numpy, scipy, pydantic (the result models) and krippendorff (lazily), and from judgekit at most
:mod:`judgekit.io.errors` and :mod:`judgekit.io.records` — no other judgekit package, no files, no printing, no
network. Every name importable from ``judgekit.stats.agreement`` before it was split into modules still is
(re-exported below; the private ones for the tests and ``bench/bench_agreement.py``).
"""

from __future__ import annotations

from judgekit.stats.agreement._common import CorrLevel, CorrMethod, Kind
from judgekit.stats.agreement.bootstrap import _interval as _interval
from judgekit.stats.agreement.bootstrap import _resample_counts as _resample_counts
from judgekit.stats.agreement.bootstrap import bootstrap_ci
from judgekit.stats.agreement.ceiling import CeilingRater, CeilingResult, inter_human_ceiling
from judgekit.stats.agreement.correlations import CorrelationResult, correlation, kendall, pearson, spearman
from judgekit.stats.agreement.intraclass import icc
from judgekit.stats.agreement.multirater import fleiss_kappa, krippendorff_alpha
from judgekit.stats.agreement.paired import cohen_kappa, pass_agreement, percent_agreement
from judgekit.stats.agreement.report import AgreementEntry, AgreementReport, agreement_report
from judgekit.stats.agreement.report import _prepare_report as _prepare_report
from judgekit.stats.agreement.report import _Prepared as _Prepared
from judgekit.stats.agreement.report import _Spec as _Spec
from judgekit.stats.agreement.weighted import _w_alpha as _w_alpha
from judgekit.stats.agreement.weighted_corr import _w_kendall_general as _w_kendall_general
from judgekit.stats.agreement.weighted_corr import _w_pearson as _w_pearson
from judgekit.stats.agreement.weighted_corr import _w_spearman_general as _w_spearman_general

__all__ = [
    "AgreementEntry",
    "AgreementReport",
    "CeilingRater",
    "CeilingResult",
    "CorrLevel",
    "CorrMethod",
    "CorrelationResult",
    "Kind",
    "agreement_report",
    "bootstrap_ci",
    "cohen_kappa",
    "correlation",
    "fleiss_kappa",
    "icc",
    "inter_human_ceiling",
    "kendall",
    "krippendorff_alpha",
    "pass_agreement",
    "pearson",
    "percent_agreement",
    "spearman",
]
