"""Stage 5, reporting: figures turned into something a person reads: :mod:`~judgekit.reporting.markdown` (the
Markdown summary of a run) and :mod:`~judgekit.reporting.tables` (the per-model / per-category table rows the
CLI prints and the API returns), :mod:`~judgekit.reporting.leaderboard` (models ranked with rank ranges),
:mod:`~judgekit.reporting.html` (the self-contained HTML page) and :mod:`~judgekit.reporting.plots` (its
matplotlib plots as SVG text).

May import :mod:`judgekit.io`, :mod:`judgekit.stats`, :mod:`judgekit.judging.rubric` (criteria and the pass
rule), and, lazily, :mod:`judgekit.local` with the local backend's naming (a local judge's measured
agreement); must not call a judge, write to the store or import the API or the CLI.
"""
