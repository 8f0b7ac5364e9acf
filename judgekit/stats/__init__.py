"""Stage 4, statistics: pure functions over numbers and records (no files, no printing, no network).

- :mod:`~judgekit.stats.aggregate`: per-group means and pass rates of judgments;
- :mod:`~judgekit.stats.passrate`: pass rates with Wilson intervals, PPI (prediction-powered inference);
- :mod:`~judgekit.stats.robustness`: paired clean-vs-degraded differences, bootstrap CIs, Wilcoxon/McNemar;
- :mod:`~judgekit.stats.agreement`: judge-human agreement (kappa, alpha, ICC, correlations at three levels,
  bootstrap, the inter-human ceiling, the report that picks statistics).

May import :mod:`judgekit.io.records` and :mod:`judgekit.io.errors` only.
"""
