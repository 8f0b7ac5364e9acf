"""Stage 5, reporting: figures turned into something a person reads (:mod:`~judgekit.reporting.markdown`:
the Markdown summary and tables; HTML next).

May import :mod:`judgekit.io`, :mod:`judgekit.stats` and :mod:`judgekit.local` (for a local judge's measured
agreement); must not call a judge or import the CLI.
"""
