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

import sys
import types
from typing import TYPE_CHECKING, Any

from judgekit._lazy import lazy

#: Public name -> the module that defines it. Loaded on first use (PEP 562), so that a command imports only
#: what it runs: ``judgekit judge`` does not pay for the planning, probe, comparison or report modules.
_WHERE = {"JudgekitWarning": "_util", "Comparison": "compare", "compare": "compare", "JudgingInterrupted": "judging",
          "Results": "judging", "demo": "judging", "judge": "judging", "GenerationInterrupted": "pipeline",
          "export": "pipeline", "generate": "pipeline", "mcq": "pipeline", "perturb": "pipeline",
          "validate_local": "pipeline", "Plan": "planning", "plan": "planning", "ProbeInterrupted": "probe",
          "ProbeReport": "probe", "probe": "probe", "Agreement": "reports", "CriterionAgreement": "reports",
          "Report": "reports", "agree": "reports", "report": "reports"}

if TYPE_CHECKING:
    from judgekit.api._util import JudgekitWarning
    from judgekit.api.compare import Comparison, compare
    from judgekit.api.judging import JudgingInterrupted, Results, demo, judge
    from judgekit.api.pipeline import GenerationInterrupted, export, generate, mcq, perturb, validate_local
    from judgekit.api.planning import Plan, plan
    from judgekit.api.probe import ProbeInterrupted, ProbeReport, probe
    from judgekit.api.reports import Agreement, CriterionAgreement, Report, agree, report


__getattr__, __dir__ = lazy("judgekit.api", {name: f"judgekit.api.{module}" for name, module in _WHERE.items()},
                           globals())


class _Api(types.ModuleType):
    """``judgekit.api`` itself: importing its submodules ``compare`` and ``probe`` (the modules of the functions
    ``compare`` and ``probe``) must not replace those functions on the package, as the import system would by
    setting the submodule as an attribute of its parent."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            return  # the submodule stays reachable through sys.modules and ``from judgekit.api.X import ...``
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Api

__all__ = ["Agreement", "Comparison", "CriterionAgreement", "GenerationInterrupted", "JudgekitWarning",
           "JudgingInterrupted", "Plan", "ProbeInterrupted", "ProbeReport", "Report", "Results", "agree", "compare",
           "demo", "export", "generate", "judge", "mcq", "perturb", "plan", "probe", "report", "validate_local"]
