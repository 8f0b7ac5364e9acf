"""Small synthetic datasets shipped with judgekit (see ``judgekit.sample_data.generate``), and where the
shipped rubrics are."""

from __future__ import annotations

from pathlib import Path

from judgekit.errors import JudgekitError

SAMPLE_DIR = Path(__file__).with_name("robustmad_sample")
_PACKAGE = Path(__file__).resolve().parents[1]


def rubric_path(name: str) -> Path:
    """The shipped rubric ``name`` (``robustmad`` or ``general``): ``judgekit/rubrics/`` in an installed
    wheel, the top-level ``rubrics/`` folder in a source checkout (an editable install)."""
    for folder in (_PACKAGE / "rubrics", _PACKAGE.parent / "rubrics"):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise JudgekitError(f"shipped rubric '{name}' not found (looked in {_PACKAGE / 'rubrics'} and "
                        f"{_PACKAGE.parent / 'rubrics'})")


def sample_responses() -> Path:
    """The responses file of the RobustMAD-style sample dataset (24 items x 3 pretend models)."""
    return SAMPLE_DIR / "responses.jsonl"
