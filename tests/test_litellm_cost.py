"""The litellm backend takes the cost litellm already computed for a response (``_hidden_params``) and
only falls back to ``completion_cost`` when that figure is absent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from judgekit.judging.backends.litellm_backend import _litellm_cost


class _FakeLitellm:
    def __init__(self, result: float | Exception) -> None:
        self.result, self.calls = result, 0

    def completion_cost(self, *, completion_response: Any) -> float:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_hidden_cost_is_used_without_recomputing() -> None:
    fake = _FakeLitellm(9.0)
    assert _litellm_cost(fake, SimpleNamespace(_hidden_params={"response_cost": 0.00159})) == 0.00159
    assert fake.calls == 0


def test_hidden_none_means_unpriced() -> None:
    fake = _FakeLitellm(9.0)
    assert _litellm_cost(fake, SimpleNamespace(_hidden_params={"response_cost": None})) is None
    assert fake.calls == 0


def test_hidden_params_object_form() -> None:
    fake = _FakeLitellm(9.0)
    assert _litellm_cost(fake, SimpleNamespace(_hidden_params=SimpleNamespace(response_cost=0.5))) == 0.5
    assert fake.calls == 0


def test_fallback_to_completion_cost() -> None:
    assert _litellm_cost(_FakeLitellm(0.25), SimpleNamespace(_hidden_params={})) == 0.25
    assert _litellm_cost(_FakeLitellm(0.25), SimpleNamespace()) == 0.25
    assert _litellm_cost(_FakeLitellm(ValueError("unmapped")), SimpleNamespace(_hidden_params={})) is None
