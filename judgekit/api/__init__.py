"""The Python API: every ``judgekit`` command as a function that returns its figures instead of printing them.

The CLI is a thin layer over these (parse flags, call the function, print). Conventions shared by all:

- inputs are a path (.jsonl, .csv, .parquet) or the objects themselves (:class:`~judgekit.io.records.Response`,
  :class:`~judgekit.io.records.Judgment`, :class:`Results`); every input and output path is checked before
  anything is written or paid for, and a mistake raises :class:`~judgekit.io.errors.JudgekitError` naming the
  file and line (or the field; field names are the CLI's flags, e.g. ``--out``);
- a judge's scores are the rubric's (1-5 for the shipped rubrics); ``passed`` is the rubric's pass rule
  (``overall >= 3`` for robustmad); an unscored judgment (no valid reply) has no scores and ``passed`` None,
  and is left out of every mean and pass rate (never counted as a fail);
- judge and generation calls go to a SQLite store as they arrive; the same call again reads them instead of
  paying again; Ctrl-C raises :class:`JudgingInterrupted` / :class:`GenerationInterrupted` (both
  KeyboardInterrupt) after storing every finished call;
- heavy packages (litellm, scipy, pyarrow, torch, pandas) are imported inside the functions, never by
  ``import judgekit``.

Functions: :func:`judge`, :func:`report`, :func:`agree`, :func:`compare`, :func:`probe`, :func:`perturb`,
:func:`generate` (also exported by ``judgekit``), :func:`demo`, :func:`mcq`, :func:`export`,
:func:`validate_local`, :func:`plan` (sample sizes: items, interval widths, PPI labels). The statistics
themselves (pass rates, PPI, robustness, agreement) are functions of :mod:`judgekit.stats`.
"""

from judgekit.api._util import JudgekitWarning
from judgekit.api.compare import Comparison, compare
from judgekit.api.judging import JudgingInterrupted, Results, demo, judge
from judgekit.api.pipeline import GenerationInterrupted, export, generate, mcq, perturb, validate_local
from judgekit.api.planning import Plan, plan
from judgekit.api.probe import ProbeInterrupted, ProbeReport, probe
from judgekit.api.reports import Agreement, CriterionAgreement, Report, agree, report

__all__ = ["Agreement", "Comparison", "CriterionAgreement", "GenerationInterrupted", "JudgekitWarning",
           "JudgingInterrupted", "Plan", "ProbeInterrupted", "ProbeReport", "Report", "Results", "agree", "compare",
           "demo", "export", "generate", "judge", "mcq", "perturb", "plan", "probe", "report", "validate_local"]
