"""judgekit: score open-ended answers of AI models with LLM judges, and prove the judges can be trusted.

The package never imports litellm at import time (it costs ~3 s); the litellm backend imports it lazily,
after setting ``LITELLM_LOCAL_MODEL_COST_MAP=True`` so litellm uses its bundled price map instead of
fetching one from the internet.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"

from judgekit.io.errors import JudgekitError
from judgekit.io.records import Item, Judgment, Response
from judgekit.judging.rubric import Rubric, load_rubric

__all__ = ["Item", "JudgekitError", "Judgment", "Response", "Rubric", "__version__", "load_rubric"]
