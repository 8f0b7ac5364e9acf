"""The figures of ``judgekit validate`` (judgekit.local.validate) come from judgekit.stats and scipy: ROC AUC is
scipy's Mann-Whitney U over n1 * n0, Cohen's kappa and the summary-level correlation are judgekit.stats'. They
equal the hand-written forms they replaced (rank sums; (p_o - p_e) / (1 - p_e); a scipy loop over groups)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from judgekit.local.validate import kappa_binary, roc_auc, summary_level


def _auc_rank_sum(score: np.ndarray, label: np.ndarray) -> float:
    """The former hand-written form: (sum of the positives' ranks - n1 (n1 + 1) / 2) / (n1 n0)."""
    r = stats.rankdata(score)
    n1, n0 = int(label.sum()), int((~label).sum())
    return float((r[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc_pairs(score: np.ndarray, label: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + P(tie) / 2, over all pairs."""
    d = score[label][:, None] - score[~label][None, :]
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


def _kappa_po_pe(a: np.ndarray, b: np.ndarray) -> float:
    po = float((a == b).mean())
    pe = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return (po - pe) / (1 - pe) if pe < 1 else math.nan


def test_roc_auc_is_mann_whitney_and_equals_the_rank_sum_form() -> None:
    rng = np.random.default_rng(0)
    for t in range(200):
        n = int(rng.integers(2, 300))
        label = rng.random(n) < 0.4
        if label.all() or not label.any():
            continue
        score = rng.integers(0, 4, n).astype(float) if t % 2 else rng.normal(size=n) + label
        assert roc_auc(score, label) == _auc_rank_sum(score, label)  # bit-identical
        assert roc_auc(score, label) == pytest.approx(_auc_pairs(score, label), abs=1e-12)
    assert roc_auc([3, 1, 2], [True, False, False]) == 1.0
    assert roc_auc([1, 1], [True, False]) == 0.5
    assert math.isnan(roc_auc([1, 2], [True, True]))


def test_kappa_binary_is_cohen_kappa() -> None:
    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 200))
        a = rng.random(n) < rng.uniform(0, 1)
        b = np.where(rng.random(n) < rng.uniform(0, 1), a, rng.random(n) < 0.5)
        expected = _kappa_po_pe(a, b)
        got = kappa_binary(a, b)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)
    assert math.isnan(kappa_binary([True, True], [True, True]))  # no expected disagreement: undefined
    assert kappa_binary([True, True], [False, False]) == 0.0


@pytest.mark.parametrize("method", ["spearman", "kendall"])
def test_summary_level_equals_a_scipy_loop_over_groups(method: str) -> None:
    rng = np.random.default_rng(2)
    groups = np.repeat([f"doc{k}" for k in range(30)], 8)
    human = np.round(rng.normal(3, 1, groups.size), 1)
    pred = np.where(np.arange(groups.size) % 3 == 0, rng.integers(1, 6, groups.size), human + rng.normal(size=240))
    pred[:8] = 2.0  # one group with a constant side: skipped
    f = stats.spearmanr if method == "spearman" else stats.kendalltau
    vals = [f(pred[groups == g], human[groups == g]).statistic for g in dict.fromkeys(groups.tolist())
            if np.ptp(pred[groups == g]) > 0 and np.ptp(human[groups == g]) > 0]
    assert len(vals) == 29
    assert summary_level(groups, pred, human, method) == pytest.approx(float(np.mean(vals)), abs=1e-12)
    assert math.isnan(summary_level(["a", "a"], [1.0, 1.0], [1.0, 2.0]))
