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


@pytest.fixture(scope="session", autouse=True)
def warm_servers_of_this_session() -> Iterator[None]:
    """The ``judgekit`` commands the tests run start warm servers (judgekit.cli.warm) in a folder of this session,
    which end after 120 s idle and are stopped when the session ends. Set ``JUDGEKIT_SERVER=0`` to run the suite
    with every command in its own process."""
    import os
    import shutil
    import tempfile

    from judgekit.cli import warm

    folder = tempfile.mkdtemp(prefix="jk-warm-", dir="/tmp")  # short: a socket's path is at most 107 bytes
    saved = {k: os.environ.get(k) for k in (warm.ENV_DIR, warm.ENV_IDLE)}
    os.environ[warm.ENV_DIR] = folder
    os.environ.setdefault(warm.ENV_IDLE, "120")
    try:
        yield
    finally:
        warm.stop_servers()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)
