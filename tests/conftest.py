"""Shared fixtures: a scripted judge server and a factory for unique Response records."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from judgekit.io.records import Response

sys.path.insert(0, str(Path(__file__).parent))
from scripted_server import ScriptedServer


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A fresh scripted OpenAI-compatible server (see tests/scripted_server.py) with an empty log."""
    with ScriptedServer() as srv:
        yield srv


MakeResponse = Callable[..., Response]


@pytest.fixture
def make_response() -> MakeResponse:
    """``make_response(answer, **fields)``: a Response whose id and question are unique (so the scripted
    server counts its requests apart from every other response's); ``fields`` override any field."""

    def make(answer: str = "The metal nut has a scratch at the top-right.", **fields: Any) -> Response:
        tag = uuid.uuid4().hex[:12]
        data: dict[str, Any] = {"id": f"item-{tag}", "model": "model-under-test",
                                "question": f"[{tag}] Is there any defect on the metal nut?",
                                "reference": "Yes, a scratch at the top-right of the outer edge.",
                                "response": answer}
        data.update(fields)
        return Response(**data)

    return make
