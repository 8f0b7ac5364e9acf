"""The plots of the HTML report (:mod:`judgekit.reporting.html`), drawn with matplotlib and returned as SVG text
to embed inline (no file, no network).

matplotlib is imported inside the functions only (Agg backend), so that importing judgekit stays cheap. The SVG
is made reproducible: a fixed ``svg.hashsalt`` (the ids of clip paths), text kept as ``<text>`` elements
(``svg.fonttype = "none"``: no glyph paths, smaller, searchable), no date in the metadata, and no math
parsing of labels (a model name holding ``$`` is drawn as written). matplotlib escapes every label it writes
into the SVG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

_RC = {"svg.hashsalt": "judgekit", "svg.fonttype": "none", "text.parse_math": False, "font.size": 9,
       "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3}


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def _svg(fig: Any) -> str:
    """The figure as SVG text without the XML prolog and doctype (ready to inline in HTML)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg"):].strip()
    start, end = text.find(" <metadata>"), text.find("</metadata>\n")
    if 0 <= start < end:  # the RDF block names the creator's namespaces only: not needed inline
        text = text[:start] + text[end + len("</metadata>\n"):]
    return text


def _height(n: int) -> float:
    return max(2.2, 0.35 * n + 1.2)


def criterion_profile(models: Sequence[str], criteria: Sequence[str],
                      means: Mapping[str, Mapping[str, float]]) -> str:
    """Grouped horizontal bars: the mean of each criterion (and overall), one bar per model in each group.
    ``means[model][criterion]``; a missing or nan mean is left out."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(7.0, _height(len(criteria) * max(1, len(models)) * 0.45 + 1))
        width = 0.8 / max(1, len(models))
        for i, model in enumerate(models):
            ys = [k + i * width for k in range(len(criteria))]
            xs = [means.get(model, {}).get(c, math.nan) for c in criteria]
            ax.barh(ys, [0 if math.isnan(x) else x for x in xs], height=width, label=model)
        ax.set_yticks([k + 0.4 - width / 2 for k in range(len(criteria))], list(criteria))
        ax.invert_yaxis()
        ax.set_xlabel("mean score (scored judgments)")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
        return _svg(fig)


def pass_rates(models: Sequence[str], rates: Sequence[float], lows: Sequence[float],
               highs: Sequence[float]) -> str:
    """Each model's pass rate (a dot) with its interval (a bar), best first."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.0, _height(len(models)))
        ys = list(range(len(models)))
        clean = [0.0 if math.isnan(r) else r for r in rates]
        err = [[max(0.0, r - lo) if not math.isnan(lo) else 0.0 for r, lo in zip(clean, lows, strict=True)],
               [max(0.0, hi - r) if not math.isnan(hi) else 0.0 for r, hi in zip(clean, highs, strict=True)]]
        ax.errorbar(clean, ys, xerr=err, fmt="o", capsize=4)
        ax.set_yticks(ys, list(models))
        ax.invert_yaxis()
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("pass rate (95 % Wilson interval)")
        return _svg(fig)


def slopes(lines: Sequence[tuple[str, float, float]], *, ylabel: str = "mean overall") -> str:
    """A slope chart: one line per ``(label, clean, degraded)`` from the clean to the degraded value."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.0, 3.6)
        for label, clean, degraded in lines:
            ax.plot([0, 1], [clean, degraded], marker="o", label=label)
        ax.set_xticks([0, 1], ["clean", "degraded"])
        ax.set_xlim(-0.2, 1.2)
        ax.set_ylabel(ylabel)
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
        return _svg(fig)


def distributions(models: Sequence[str], values: Mapping[str, Sequence[float]]) -> str:
    """Box plots of each model's overall scores (scored judgments), with the mean as a marker."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.0, _height(len(models)))
        data = [list(values.get(m, [])) or [math.nan] for m in models]
        ax.boxplot(data, orientation="horizontal", showmeans=True, tick_labels=list(models))
        ax.invert_yaxis()
        ax.set_xlabel("overall score")
        return _svg(fig)


def confusion(counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], *,
              ylabel: str = "human rating", xlabel: str = "judge score") -> str:
    """A heatmap of ``counts[i][j]``: how many items have row label ``rows[i]`` (the human rating) and column
    label ``columns[j]`` (the judge's score); each cell shows its count, the diagonal of equal labels is
    outlined."""
    import matplotlib
    from matplotlib.patches import Rectangle

    with matplotlib.rc_context({**_RC, "axes.grid": False}):
        fig, ax = _figure(max(3.2, 0.55 * len(columns) + 1.6), max(2.6, 0.45 * len(rows) + 1.2))
        top = max((c for row in counts for c in row), default=0)
        ax.imshow([[float(c) for c in row] for row in counts], cmap="Blues", vmin=0, vmax=max(1, top),
                  aspect="auto")
        for i, row in enumerate(counts):
            for j, c in enumerate(row):
                ax.text(j, i, str(c), ha="center", va="center", fontsize=8,
                        color="white" if top and c > 0.6 * top else "#1d2330")
        for i, label in enumerate(rows):
            if label in columns:
                j = list(columns).index(label)
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.2, ec="#b3261e"))
        ax.set_xticks(range(len(columns)), list(columns))
        ax.set_yticks(range(len(rows)), list(rows))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.spines[:].set_visible(False)
        return _svg(fig)


def shifts(labels: Sequence[str], values: Sequence[float], lows: Sequence[float], highs: Sequence[float], *,
           xlabel: str = "shift of overall (probe - unchanged)") -> str:
    """A forest plot: each probe's shift (a dot) with its interval (a bar), a line at 0 (no bias). A nan shift
    or bound is drawn without it."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, ax = _figure(6.0, _height(len(labels)))
        ys = list(range(len(labels)))
        clean = [0.0 if math.isnan(v) else v for v in values]
        err = [[max(0.0, v - lo) if not math.isnan(lo) else 0.0 for v, lo in zip(clean, lows, strict=True)],
               [max(0.0, hi - v) if not math.isnan(hi) else 0.0 for v, hi in zip(clean, highs, strict=True)]]
        ax.axvline(0.0, color="#888", lw=1)
        ax.errorbar(clean, ys, xerr=err, fmt="o", capsize=4, color="#b3261e")
        ax.set_yticks(ys, list(labels))
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        return _svg(fig)
