"""Stage 4, statistics: pure functions over numbers and records (no files, no printing, no network).

- :mod:`~judgekit.stats.aggregate`: per-group means and pass rates of judgments;
- :mod:`~judgekit.stats.passrate`: pass rates with Wilson intervals, PPI (prediction-powered inference);
- :mod:`~judgekit.stats.ranks`: leaderboard ranks by pass rate with bootstrap rank ranges;
- :mod:`~judgekit.stats.robustness`: paired clean-vs-degraded differences, bootstrap CIs, Wilcoxon/McNemar;
- :mod:`~judgekit.stats.compare`: two judgings of the same answers compared (paired differences, rank changes,
  agreement of the runs);
- :mod:`~judgekit.stats.agreement`: judge-human agreement (kappa, alpha, ICC, correlations at three levels,
  bootstrap, the inter-human ceiling, the report that picks statistics).

May import :mod:`judgekit.io.records` and :mod:`judgekit.io.errors` only (and :mod:`judgekit._lazy`, which
imports nothing).

Besides those modules (and :mod:`~judgekit.stats.ppi`, :mod:`~judgekit.stats.paired_tests`, which
:mod:`~judgekit.stats.passrate` and :mod:`~judgekit.stats.robustness` re-export), the main statistics are
importable from here, arrays in and numbers out, in the style of ``sklearn.metrics``::

    from judgekit.stats import cohen_kappa, krippendorff_alpha, spearman, ppi_pass_rate

    cohen_kappa(judge, human, weights="quadratic", labels=range(1, 6))
    krippendorff_alpha(ratings, level="ordinal")          # ratings: items x raters, NaN = missing
    spearman(judge, human, level="summary", groups=doc)   # or level="sample" / "system" (systems=...)

Each name is the function of its module (not a copy), loaded on first use, so ``import judgekit.stats``
itself imports neither numpy nor scipy:

- agreement: :func:`percent_agreement`, :func:`pass_agreement`, :func:`cohen_kappa`, :func:`fleiss_kappa`,
  :func:`krippendorff_alpha`, :func:`icc`, :func:`correlation`, :func:`pearson`, :func:`spearman`,
  :func:`kendall`, :func:`bootstrap_ci`, :func:`inter_human_ceiling`, :func:`agreement_report`;
- pass rates: :func:`wilson_interval`, :func:`pass_rate`, :func:`ppi_pass_rate`;
- paired differences: :func:`paired_difference`, :func:`bootstrap_mean_ci`, :func:`wilcoxon_pratt`,
  :func:`mcnemar_exact`;
- multiple comparisons (:mod:`~judgekit.stats.multiple`): :func:`adjust_pvalues` (Holm-Bonferroni or
  Benjamini-Hochberg);
- leaderboard ranks: :func:`rank_ranges` by pass rate and :func:`mean_rank_ranges` by a mean score (bootstrap rank
  ranges that admit ties, :mod:`~judgekit.stats.ranks`);
- planning (:mod:`~judgekit.stats.planning`): :func:`items_for_paired_rates`, :func:`items_for_paired_means`,
  :func:`items_for_two_rates`, :func:`paired_rate_power`, :func:`paired_mean_power`,
  :func:`discordance_from_rates`, :func:`items_for_half_width`, :func:`wilson_half_width`,
  :func:`labels_for_half_width`, :func:`ppi_half_width`, :func:`moments_from_agreement`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from judgekit._lazy import lazy

if TYPE_CHECKING:
    from judgekit.stats.aggregate import wilson_interval
    from judgekit.stats.agreement import (
        agreement_report,
        bootstrap_ci,
        cohen_kappa,
        correlation,
        fleiss_kappa,
        icc,
        inter_human_ceiling,
        kendall,
        krippendorff_alpha,
        pass_agreement,
        pearson,
        percent_agreement,
        spearman,
    )
    from judgekit.stats.multiple import adjust_pvalues
    from judgekit.stats.paired_tests import bootstrap_mean_ci, mcnemar_exact, paired_difference, wilcoxon_pratt
    from judgekit.stats.passrate import pass_rate
    from judgekit.stats.planning import (
        discordance_from_rates,
        items_for_half_width,
        items_for_paired_means,
        items_for_paired_rates,
        items_for_two_rates,
        labels_for_half_width,
        moments_from_agreement,
        paired_mean_power,
        paired_rate_power,
        ppi_half_width,
        wilson_half_width,
    )
    from judgekit.stats.ppi import ppi_pass_rate
    from judgekit.stats.ranks import mean_rank_ranges, rank_ranges

#: The module each public name is loaded from.
_SOURCES = {
    "adjust_pvalues": "judgekit.stats.multiple",
    "agreement_report": "judgekit.stats.agreement",
    "bootstrap_ci": "judgekit.stats.agreement",
    "bootstrap_mean_ci": "judgekit.stats.paired_tests",
    "cohen_kappa": "judgekit.stats.agreement",
    "correlation": "judgekit.stats.agreement",
    "fleiss_kappa": "judgekit.stats.agreement",
    "icc": "judgekit.stats.agreement",
    "inter_human_ceiling": "judgekit.stats.agreement",
    "kendall": "judgekit.stats.agreement",
    "krippendorff_alpha": "judgekit.stats.agreement",
    "mcnemar_exact": "judgekit.stats.paired_tests",
    "paired_difference": "judgekit.stats.paired_tests",
    "pass_agreement": "judgekit.stats.agreement",
    "pass_rate": "judgekit.stats.passrate",
    "pearson": "judgekit.stats.agreement",
    "percent_agreement": "judgekit.stats.agreement",
    "ppi_pass_rate": "judgekit.stats.ppi",
    "rank_ranges": "judgekit.stats.ranks",
    "mean_rank_ranges": "judgekit.stats.ranks",
    "spearman": "judgekit.stats.agreement",
    "wilcoxon_pratt": "judgekit.stats.paired_tests",
    "wilson_interval": "judgekit.stats.aggregate",
    "discordance_from_rates": "judgekit.stats.planning",
    "items_for_half_width": "judgekit.stats.planning",
    "items_for_paired_means": "judgekit.stats.planning",
    "items_for_paired_rates": "judgekit.stats.planning",
    "items_for_two_rates": "judgekit.stats.planning",
    "labels_for_half_width": "judgekit.stats.planning",
    "moments_from_agreement": "judgekit.stats.planning",
    "paired_mean_power": "judgekit.stats.planning",
    "paired_rate_power": "judgekit.stats.planning",
    "ppi_half_width": "judgekit.stats.planning",
    "wilson_half_width": "judgekit.stats.planning",
}

__all__ = [
    "adjust_pvalues",
    "agreement_report",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "cohen_kappa",
    "correlation",
    "discordance_from_rates",
    "fleiss_kappa",
    "icc",
    "inter_human_ceiling",
    "items_for_half_width",
    "items_for_paired_means",
    "items_for_paired_rates",
    "items_for_two_rates",
    "kendall",
    "krippendorff_alpha",
    "labels_for_half_width",
    "mcnemar_exact",
    "mean_rank_ranges",
    "moments_from_agreement",
    "paired_difference",
    "paired_mean_power",
    "paired_rate_power",
    "pass_agreement",
    "pass_rate",
    "pearson",
    "percent_agreement",
    "ppi_half_width",
    "ppi_pass_rate",
    "rank_ranges",
    "spearman",
    "wilcoxon_pratt",
    "wilson_half_width",
    "wilson_interval",
]


# __dir__ lists the public names (with what is already loaded)
__getattr__, __dir__ = lazy(__name__, _SOURCES, globals())
