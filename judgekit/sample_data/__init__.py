"""Small synthetic datasets shipped with judgekit (see ``judgekit.sample_data.generate``), and where the
shipped rubrics are.

Data and paths only: may import :mod:`judgekit.io`; must not import any pipeline stage (judging, stats, ...).
"""

from __future__ import annotations

from pathlib import Path

from judgekit.io.errors import JudgekitError

SAMPLE_DIR = Path(__file__).with_name("robustmad_sample")
_PACKAGE = Path(__file__).resolve().parents[1]


def _rubric_folders() -> tuple[Path, Path]:
    return (_PACKAGE / "rubrics", _PACKAGE.parent / "rubrics")


def shipped_rubrics() -> list[str]:
    """The names of the shipped rubrics (``forge``, ``general``, ``robustmad``), sorted; each loads by name with
    :func:`judgekit.judging.rubric.load_rubric` and :func:`rubric_path`."""
    for folder in _rubric_folders():
        names = sorted(p.stem for p in folder.glob("*.yaml") if p.is_file())
        if names:
            return names
    return []


def rubric_path(name: str) -> Path:
    """The shipped rubric ``name`` (``robustmad`` or ``general``): ``judgekit/rubrics/`` in an installed
    wheel, the top-level ``rubrics/`` folder in a source checkout (an editable install)."""
    for folder in _rubric_folders():
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    raise JudgekitError(f"shipped rubric '{name}' not found (shipped: {', '.join(shipped_rubrics()) or 'none'}; "
                        f"looked in {_PACKAGE / 'rubrics'} and {_PACKAGE.parent / 'rubrics'})")


def sample_responses() -> Path:
    """The responses file of the RobustMAD-style sample dataset (24 items x 3 pretend models)."""
    return SAMPLE_DIR / "responses.jsonl"


def forge_responses() -> Path:
    """The responses file of the FORGE-style sample (8 part questions x 2 pretend models; ground truth for the
    fact checks of the shipped ``forge`` rubric in ``meta``)."""
    return Path(__file__).with_name("forge_sample") / "responses.jsonl"
