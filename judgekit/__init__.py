"""judgekit: score open-ended answers of AI models with LLM judges, and prove the judges can be trusted.

The Python API (see :mod:`judgekit.api` and README, "Python API")::

    import judgekit
    results = judgekit.judge("responses.jsonl", "robustmad", judges=["local/default"])
    results.to_pandas()                      # one row per judgment
    judgekit.report(results).pass_rates      # pass rates with Wilson and bootstrap intervals

The package never imports litellm at import time (it costs ~3 s); the litellm backend imports it lazily,
after setting ``LITELLM_LOCAL_MODEL_COST_MAP=True`` so litellm uses its bundled price map instead of
fetching one from the internet. scipy, pyarrow, torch and pandas are imported by the functions that use them.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"


from typing import TYPE_CHECKING

from judgekit import _compat
from judgekit._lazy import lazy

_compat.install()  # the old flat import paths (judgekit.records, judgekit.runner, ...) for one release, deprecated

# The names below load on first use (PEP 562), so that ``import judgekit`` (and ``judgekit --help``, whose
# entry point is judgekit.cli) costs no pydantic, no YAML and no API module: ``judgekit.judge`` is still the
# function of judgekit.api, not a copy.
_LAZY = {"Results": "judgekit.api", "agree": "judgekit.api", "compare": "judgekit.api", "generate": "judgekit.api",
         "judge": "judgekit.api", "perturb": "judgekit.api", "probe": "judgekit.api", "report": "judgekit.api",
         "JudgekitError": "judgekit.io.errors", "Item": "judgekit.io.records", "Judgment": "judgekit.io.records",
         "Response": "judgekit.io.records", "Rubric": "judgekit.judging.rubric",
         "load_rubric": "judgekit.judging.rubric"}

if TYPE_CHECKING:
    from judgekit.api import Results, agree, compare, generate, judge, perturb, probe, report
    from judgekit.io.errors import JudgekitError
    from judgekit.io.records import Item, Judgment, Response
    from judgekit.judging.rubric import Rubric, load_rubric


__getattr__, __dir__ = lazy("judgekit", _LAZY, globals())

__all__ = ["Item", "JudgekitError", "Judgment", "Response", "Results", "Rubric", "__version__", "agree", "compare",
           "generate", "judge", "load_rubric", "perturb", "probe", "report"]
