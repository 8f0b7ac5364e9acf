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


from judgekit import _compat
from judgekit.api import Results, agree, compare, generate, judge, perturb, probe, report
from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item, Judgment, Response
from judgekit.judging.rubric import Rubric, load_rubric

_compat.install()  # the old flat import paths (judgekit.records, judgekit.runner, ...) for one release, deprecated

__all__ = ["Item", "JudgekitError", "Judgment", "Response", "Results", "Rubric", "__version__", "agree", "compare",
           "generate", "judge", "load_rubric", "perturb", "probe", "report"]
