"""The shared vocabulary: pydantic records for items, model responses and judgments.

Conventions:
- ``Item.id`` identifies a question (the same id is re-used for the degraded copies of the same question,
  told apart by ``condition``). A response is identified by ``(id, model, condition)``.
- A multiple-choice item lists its ``options`` in order (option 1 is letter A, option 2 is B, ...) and
  gives the correct letter as ``reference``; ``category`` then names the subtask and ``dataset`` the source
  dataset (MMAD averages over subtasks within a dataset, then over datasets).
- The models build their validators on first use (``defer_build``): ``judgekit --help`` and ``rubric check``
  never pay for them. Their JSON (``model_dump_json``) writes a non-finite float as the string ``"NaN"`` /
  ``"Infinity"`` (``ser_json_inf_nan="strings"``), never as a silent null: a validated record holds none, and
  :func:`judgekit.io.dataio.write_records` writes NaN as null and refuses an infinity.
- Image and point-cloud paths are stored as given in the file; :func:`judgekit.io.dataio.read_responses` resolves them
  relative to the responses file and checks that they exist.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Item(BaseModel):
    """A question with its ground-truth answer, optionally with images."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, defer_build=True, ser_json_inf_nan="strings")

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    reference: str
    category: str | None = None
    condition: str | None = None
    dataset: str | None = None
    options: list[str] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    reference_images: list[str] = Field(default_factory=list)
    point_clouds: list[str] = Field(default_factory=list)  # PLY/PCD/XYZ/NPY files, see judgekit.io.pointclouds
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, v: Any) -> Any:
        # Numeric ids (common in CSV/Parquet) are accepted and kept as text.
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return str(v)
        return v


def setting_label(generation: dict[str, Any] | None) -> str | None:
    """A response's prompt setting as a short name (``0-shot``, ``3-shot``, ``1-shot+``, ``... + knowledge``),
    from its ``meta.generation`` (written by ``judgekit generate``, see :mod:`judgekit.generation.shots`); None
    when there is no record or it has no setting (written before settings were recorded)."""
    if not isinstance(generation, dict) or "shots" not in generation:
        return None
    shots = str(generation["shots"])
    name = "1-shot+" if shots == "1+" else f"{shots}-shot"
    return f"{name} + knowledge" if generation.get("knowledge") else name


#: Settings that are the plain prompt: a judgment of such an answer keeps the bare model name.
PLAIN_SETTINGS = (None, "0-shot")


def entry_name(model: str, setting: str | None) -> str:
    """The name a model's answers in one prompt setting go by in results, tables and ranks: the bare model for
    the plain prompt (no setting, or ``0-shot``), else ``"MODEL [SETTING]"`` (e.g. ``"qwen [1-shot+]"``), so
    that each setting is its own leaderboard entry and never pools with another."""
    return model if setting in PLAIN_SETTINGS else f"{model} [{setting}]"


class Response(Item):
    """One answer of one model under test to one item."""

    model: str = Field(min_length=1)
    response: str

    @property
    def uid(self) -> tuple[str, str, str]:
        """``(id, model, condition)``: what identifies a response (within one prompt setting, see
        :attr:`setting`)."""
        return (self.id, self.model, self.condition or "")

    @property
    def setting(self) -> str | None:
        """The prompt setting of ``judgekit generate`` recorded in ``meta.generation`` (:func:`setting_label`)."""
        return setting_label(self.meta.get("generation"))

    @property
    def unique_key(self) -> tuple[str, str, str, str]:
        """``(id, model, condition, setting)``: what makes a response unique within a file (one file may hold
        the answers of several prompt settings)."""
        return (*self.uid, self.setting or "")


Status = Literal["scored", "unscored"]


class CheckResult(BaseModel):
    """The outcome of one deterministic fact check of a rubric (:mod:`judgekit.judging.checks`) on one answer:
    ``passed``, the value ``found`` in the answer (None when nothing was), ``reason`` and whether the check
    gates the pass verdict (``gate``)."""

    model_config = ConfigDict(allow_inf_nan=False, defer_build=True, ser_json_inf_nan="strings")

    passed: bool
    found: str | float | list[str] | None = None
    reason: str = ""
    gate: bool = False


class SampleResult(BaseModel):
    """One judge sample (one call, after any re-asks) for one response."""

    model_config = ConfigDict(allow_inf_nan=False, defer_build=True, ser_json_inf_nan="strings")

    sample: int
    status: Status
    reason: str | None = None
    scores: dict[str, int] = Field(default_factory=dict)
    rationale: str | None = None
    attempts: int = 0
    truncated: bool = False  # a local judge read only the head of the answer (see Judgment.truncated)


class Judgment(BaseModel):
    """The verdict of one judge (or of a panel) on one response.

    ``scores`` and ``overall`` are reduced over the valid samples (``--reduce``: mean, median or mode);
    ``spread`` holds the population standard deviation of each criterion over those samples (0 for one).
    A judgment is ``unscored`` when no sample produced a valid reply; ``reason`` then says why. Unscored
    judgments have no scores and ``passed`` is None: a parse failure is never a score.

    Validation (also when a results file is read back): a scored judgment carries a finite number for
    ``overall`` and every score (a results file must also give ``passed``, see
    :func:`judgekit.io.dataio.read_judgments`); an unscored one carries no scores, no ``overall``
    and no ``passed``. NaN and infinities are refused everywhere. A missing or non-numeric score is an
    error, never a zero. ``truncated`` is True when a local judge scored a clipped text (the answer or
    reference did not fit its context).

    How the scores were reduced (recorded by the runner where it matters; None in results files written before
    judgekit recorded it, and where it does not matter): ``reduce`` is the ``--reduce`` of the samples (set
    when the judgment has more than one sample), ``panel_reduce`` and ``panel_quorum`` are the
    ``--panel-reduce`` and the quorum of a panel judgment (set on panel judgments only).
    """

    model_config = ConfigDict(allow_inf_nan=False, defer_build=True, ser_json_inf_nan="strings")

    id: str
    model: str
    condition: str | None = None
    category: str | None = None
    judge: str
    status: Status
    reason: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    overall: float | None = None
    passed: bool | None = None
    flags: dict[str, bool] = Field(default_factory=dict)
    spread: dict[str, float] = Field(default_factory=dict)
    rationale: str | None = None
    samples: list[SampleResult] = Field(default_factory=list)
    panel: list[Judgment] = Field(default_factory=list)
    rubric: str = ""
    rubric_version: str = ""
    temperature: float | None = None
    seed: int | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float | None = None
    latency_s: float = 0.0
    calls: int = 0
    cached_calls: int = 0
    truncated: bool = False
    reduce: str | None = None
    panel_reduce: str | None = None
    panel_quorum: int | None = None
    # the rubric's fact checks by name (recorded on unscored judgments too); overall_judge: the overall before
    # weighted checks were mixed in (set only when a check has a weight), see judgekit.judging.rubric
    checks: dict[str, CheckResult] = Field(default_factory=dict)
    overall_judge: float | None = None
    # the prompt setting of the answer (Response.setting); ``model`` then reads "MODEL [SETTING]" (entry_name)
    setting: str | None = None
    # the judges (this judgment's judge, or panel members) that are the model under test and so graded their own
    # answer, by name or declared alias (see judgekit.judging.selfgrading); None when none is (or not recorded)
    self_grading: list[str] | None = None

    @property
    def base_model(self) -> str:
        """The model under test without its setting suffix (see :func:`entry_name`)."""
        suffix = f" [{self.setting}]"
        if self.setting not in PLAIN_SETTINGS and self.model.endswith(suffix):
            return self.model[: -len(suffix)]
        return self.model

    @property
    def gate_failed(self) -> bool:
        """True when a gating fact check failed: the answer fails whatever its scores."""
        return any(c.gate and not c.passed for c in self.checks.values())

    @model_validator(mode="after")
    def _consistent(self) -> Judgment:
        # finiteness is allow_inf_nan's job (in pydantic's core, for every float field); kept lean: the runner
        # builds 50,000 of these on a re-run from the store (bench/bench_runner.py, phase C)
        if self.status == "scored":
            if self.overall is None:
                raise ValueError("a scored judgment needs a numeric 'overall'")
        elif self.scores or self.overall is not None or self.passed is not None:
            raise ValueError("an unscored judgment carries no scores, 'overall' or 'passed'")
        return self
