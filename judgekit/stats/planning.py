"""Planning an evaluation: how many items (or human labels) a comparison or an interval needs.

Three questions, each answered from stated rates or from a pilot's estimates (the API and ``judgekit plan``
estimate those from a results file):

- :func:`items_for_paired_rates` / :func:`items_for_paired_means`: items per model to detect a pass-rate (or
  mean-score) difference between two models judged on the *same* items, at a given power and two-sided alpha;
  :func:`paired_rate_power` / :func:`paired_mean_power` give the power of a given number of items;
  :func:`discordance_from_rates` turns two rates and their correlation into the discordance the first needs.
- :func:`items_for_half_width`: items to bound the half-width of a pass rate's Wilson interval
  (:func:`wilson_half_width`).
- :func:`labels_for_half_width`: human labels for a PPI++ interval of the human pass rate of a given half-width,
  with ``N`` judged but unlabelled answers, from the judge's agreement with people on a pilot, compared with
  human labels alone; :func:`ppi_half_width` is the half-width of ``n`` labels, and
  :func:`moments_from_agreement` turns stated rates into the moments it needs.

Conventions (all functions):

- **alpha is two-sided**: a difference is detected when ``|Z| > z_{1-alpha/2}``; power counts detections in the
  direction of the true difference only (the other tail adds less than alpha/2).
- **normal approximation**: every plan is the large-sample (CLT) calculation; the simulations in
  tests/test_planning.py check that the achieved power and widths come within a few points of the plan.
- **paired design**: both models answer the same ``n`` items and each item is judged for both, so
  ``n`` is the number of items *per model* (= pairs); the gain over two independent samples comes from the
  correlation of the two models' outcomes on an item.
- **half-width**: half the length of the interval, ``(high - low) / 2`` (the Wilson interval is not symmetric
  around the observed rate, so it is not exactly "rate +- half-width"); a plan's half-width is the one the
  interval has when the observed rate equals the planned rate.
- sample sizes are rounded *up* to the next integer, so the planned power (width) is reached or beaten.

References: McNemar sample size with the unconditional normal approximation, Connor (1987), Biometrics 43,
207-211; the ``z_alpha^2 / 2`` t-correction of the paired mean, Guenther (1981), The American Statistician 35,
243-244; PPI++ (Angelopoulos, Duchi, Zrnic 2023, arXiv:2311.01453) as in :mod:`judgekit.stats.ppi`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from judgekit.stats._format import json_ready

__all__ = ["LabelPlan", "discordance_from_rates", "items_for_half_width", "items_for_paired_means",
           "items_for_paired_rates", "items_for_two_rates", "labels_for_half_width", "moments_from_agreement",
           "paired_mean_power", "paired_rate_power", "ppi_half_width", "wilson_half_width"]

_MAX_N = 10**9  # no plan above a billion items: the target is then called impossible


def _z(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _check_unit(value: float, name: str, *, closed: bool = False) -> None:
    ok = (0 <= value <= 1) if closed else (0 < value < 1)
    if not (isinstance(value, int | float) and math.isfinite(value) and ok):
        raise ValueError(f"{name} must be within {'[0, 1]' if closed else '(0, 1)'}, got {value!r}")


def _check_positive(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")


def _smallest(ok: Any, lo: int = 1) -> int:
    """The smallest integer ``n >= lo`` with ``ok(n)`` for a monotone ``ok``; ValueError above ``_MAX_N``."""
    hi = max(lo, 1)
    while not ok(hi):
        if hi >= _MAX_N:
            raise ValueError("the target needs more than 10^9 items: it cannot be reached")
        lo, hi = hi + 1, min(2 * hi, _MAX_N)
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


# ------------------------------------------------------------------------------- (a) paired differences


def discordance_from_rates(rate_a: float, rate_b: float, correlation: float) -> tuple[float, float]:
    """The discordant-cell probabilities ``(p10, p01)`` of two paired pass/fail outcomes.

    ``p10 = P(A passes, B fails)``, ``p01 = P(A fails, B passes)``, from the two pass rates and the correlation
    (phi coefficient) of the outcomes on an item: ``p11 = rate_a rate_b + correlation sqrt(rate_a (1 - rate_a)
    rate_b (1 - rate_b))``, ``p10 = rate_a - p11``, ``p01 = rate_b - p11``. The discordance is ``p10 + p01``
    and the difference ``rate_b - rate_a = p01 - p10``. Raises ValueError when no joint distribution has these
    margins and this correlation (the correlation of two binary outcomes is bounded by their rates).
    """
    _check_unit(rate_a, "rate_a", closed=True)
    _check_unit(rate_b, "rate_b", closed=True)
    if not (math.isfinite(correlation) and -1 <= correlation <= 1):
        raise ValueError(f"correlation must be within [-1, 1], got {correlation!r}")
    p11 = rate_a * rate_b + correlation * math.sqrt(rate_a * (1 - rate_a) * rate_b * (1 - rate_b))
    lo, hi = max(0.0, rate_a + rate_b - 1), min(rate_a, rate_b)
    if not lo - 1e-12 <= p11 <= hi + 1e-12:
        sd = math.sqrt(rate_a * (1 - rate_a) * rate_b * (1 - rate_b))
        bounds = ((lo - rate_a * rate_b) / sd, (hi - rate_a * rate_b) / sd) if sd else (0.0, 0.0)
        raise ValueError(f"correlation {correlation:g} is impossible for pass rates {rate_a:g} and {rate_b:g} "
                         f"(possible: {bounds[0]:.3f} to {bounds[1]:.3f})")
    p11 = min(max(p11, lo), hi)
    return (rate_a - p11, rate_b - p11)


def _check_paired(diff: float, discordance: float) -> None:
    _check_unit(discordance, "discordance", closed=True)
    if not (math.isfinite(diff) and diff != 0):
        raise ValueError(f"diff must be a non-zero difference, got {diff!r}")
    if abs(diff) > discordance + 1e-12:
        raise ValueError(f"a difference of {abs(diff):g} needs at least that share of discordant items, but the "
                         f"discordance is {discordance:g}")


def paired_rate_power(n: int, diff: float, discordance: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided McNemar test (normal approximation, no continuity correction) with ``n`` pairs.

    The test: ``Z = (n01 - n10) / sqrt(n01 + n10)``, detect when ``|Z| > z_{1-alpha/2}``. With ``psi`` the
    discordance (``p10 + p01``) and ``d = p01 - p10`` the difference of the pass rates, ``n (d_hat)`` has mean
    ``n d`` and variance ``n (psi - d^2)``, and under the null ``n psi`` (Connor 1987)::

        power = Phi((|d| sqrt(n) - z_{1-alpha/2} sqrt(psi)) / sqrt(psi - d^2))
    """
    _check_unit(alpha, "alpha")
    _check_paired(diff, discordance)
    from scipy.stats import norm

    spread = discordance - diff * diff
    if spread <= 0:  # every discordant item goes one way: the test detects it surely once Z clears the bar
        return 1.0 if abs(diff) * math.sqrt(n) > _z(1 - alpha / 2) * math.sqrt(discordance) else 0.0
    return float(norm.cdf((abs(diff) * math.sqrt(n) - _z(1 - alpha / 2) * math.sqrt(discordance))
                          / math.sqrt(spread)))


def items_for_paired_rates(diff: float, discordance: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Items per model (pairs) for the McNemar test to detect a pass-rate difference ``diff``.

    ``discordance`` is the share of items on which the two models' verdicts differ (one passes, the other
    fails), e.g. a pilot's, or :func:`discordance_from_rates`. Connor's (1987) formula::

        n = ceil((z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - d^2))^2 / d^2)

    two-sided ``alpha``, normal approximation (no continuity correction). With few expected discordant pairs
    (``n psi`` below about 20) mostly going one way the approximation is conservative: e.g. rates 0.8 and 0.88
    with phi 0.6 plan 140 items, whose simulated power is about 84 % rather than 80 %. The exact McNemar test
    (:func:`judgekit.stats.paired_tests.mcnemar_exact`) is slightly conservative: with this ``n`` its power is
    a few points lower. Raises ValueError when ``|diff| > discordance`` (impossible) or ``diff == 0``.
    """
    _check_unit(power, "power")
    _check_unit(alpha, "alpha")
    _check_paired(diff, discordance)
    d2 = diff * diff
    n = (_z(1 - alpha / 2) * math.sqrt(discordance) + _z(power) * math.sqrt(max(discordance - d2, 0.0))) ** 2 / d2
    return max(1, math.ceil(n - 1e-9))


def paired_mean_power(n: int, diff: float, sd_diff: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided paired z-test of a mean difference with ``n`` pairs: ``Phi(|diff| sqrt(n) / sd_diff
    - z_{1-alpha/2})`` (normal approximation; the paired t-test has slightly less, see
    :func:`items_for_paired_means`)."""
    _check_unit(alpha, "alpha")
    _check_positive(sd_diff, "sd_diff")
    from scipy.stats import norm

    return float(norm.cdf(abs(diff) * math.sqrt(n) / sd_diff - _z(1 - alpha / 2)))


def items_for_paired_means(diff: float, sd_diff: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Items per model (pairs) for the paired t-test to detect a mean-score difference ``diff``.

    ``sd_diff`` is the standard deviation of the per-item differences ``score_B - score_A`` (a pilot's, or
    ``sd sqrt(2 (1 - correlation))`` for two models with the same score sd). Normal approximation with
    Guenther's (1981) correction for the t-test's estimated sd::

        n = ceil(((z_{1-alpha/2} + z_{power}) sd_diff / diff)^2 + z_{1-alpha/2}^2 / 2)

    two-sided ``alpha``; at least 2.
    """
    _check_unit(power, "power")
    _check_unit(alpha, "alpha")
    _check_positive(sd_diff, "sd_diff")
    if not (math.isfinite(diff) and diff != 0):
        raise ValueError(f"diff must be a non-zero difference, got {diff!r}")
    za = _z(1 - alpha / 2)
    n = ((za + _z(power)) * sd_diff / diff) ** 2 + za * za / 2
    return max(2, math.ceil(n - 1e-9))


def items_for_two_rates(rate_a: float, rate_b: float, *, power: float = 0.8, alpha: float = 0.05) -> int:
    """Items per model if the two models answered *different* items (two independent samples), for comparison
    with the paired plan: the two-proportion z-test without continuity correction (Fleiss)::

        n = ceil((z_{1-alpha/2} sqrt(2 p (1 - p)) + z_{power} sqrt(pa (1 - pa) + pb (1 - pb)))^2 / (pb - pa)^2)

    with ``p = (pa + pb) / 2``; two-sided ``alpha``."""
    _check_unit(power, "power")
    _check_unit(alpha, "alpha")
    _check_unit(rate_a, "rate_a", closed=True)
    _check_unit(rate_b, "rate_b", closed=True)
    if rate_a == rate_b:
        raise ValueError("the two rates are equal: no difference to detect")
    p = (rate_a + rate_b) / 2
    n = ((_z(1 - alpha / 2) * math.sqrt(2 * p * (1 - p))
          + _z(power) * math.sqrt(rate_a * (1 - rate_a) + rate_b * (1 - rate_b))) ** 2 / (rate_b - rate_a) ** 2)
    return max(1, math.ceil(n - 1e-9))


# ------------------------------------------------------------------------------------ (b) Wilson width


def wilson_half_width(n: int, rate: float, *, confidence: float = 0.95) -> float:
    """Half the length of the Wilson interval of ``n`` verdicts whose observed pass rate is ``rate``::

        z sqrt(rate (1 - rate) n + z^2 / 4) / (n + z^2),   z = Phi^-1((1 + confidence) / 2)

    (the interval of :func:`judgekit.stats.aggregate.wilson_interval`). It is largest at ``rate = 0.5``, where
    it is ``z / (2 sqrt(n + z^2))``, and decreases with ``n``."""
    _check_unit(rate, "rate", closed=True)
    _check_unit(confidence, "confidence")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    z = _z((1 + confidence) / 2)
    return z * math.sqrt(rate * (1 - rate) * n + z * z / 4) / (n + z * z)


def items_for_half_width(half_width: float, rate: float = 0.5, *, confidence: float = 0.95) -> int:
    """The fewest items whose Wilson interval has a half-width of at most ``half_width`` when the observed pass
    rate is ``rate``.

    ``rate = 0.5`` (the default) is the worst case: the plan then holds whatever rate is observed. With a
    pilot's (or a guessed) rate the plan is smaller but holds only if the observed rate is as far from 0.5.
    Raises ValueError when ``half_width`` is not within (0, 0.5].
    """
    _check_unit(rate, "rate", closed=True)
    _check_unit(confidence, "confidence")
    if not (math.isfinite(half_width) and 0 < half_width <= 0.5):
        raise ValueError(f"half_width must be within (0, 0.5], got {half_width!r}")
    return _smallest(lambda n: wilson_half_width(n, rate, confidence=confidence) <= half_width)


# ------------------------------------------------------------------------------------------- (c) PPI++


def moments_from_agreement(human_rate: float, judge_rate: float, agreement: float) -> tuple[float, float, float]:
    """``(var_y, var_f, cov_yf)`` of the human verdict ``Y`` and the judge's ``f`` from stated rates.

    ``human_rate = P(Y = 1)``, ``judge_rate = P(f = 1)``, ``agreement = P(Y = f)``; then
    ``P(Y = 1, f = 1) = (agreement - 1 + human_rate + judge_rate) / 2``. Raises ValueError when no joint
    distribution has these rates and this agreement.
    """
    for name, v in (("human_rate", human_rate), ("judge_rate", judge_rate), ("agreement", agreement)):
        _check_unit(v, name, closed=True)
    p11 = (agreement - 1 + human_rate + judge_rate) / 2
    lo, hi = max(0.0, human_rate + judge_rate - 1), min(human_rate, judge_rate)
    if not lo - 1e-12 <= p11 <= hi + 1e-12:
        raise ValueError(f"agreement {agreement:g} is impossible for a human rate of {human_rate:g} and a judge "
                         f"rate of {judge_rate:g} (possible: {1 - abs(human_rate - judge_rate):.3f} at most, "
                         f"{abs(1 - human_rate - judge_rate):.3f} at least)")
    p11 = min(max(p11, lo), hi)
    return (human_rate * (1 - human_rate), judge_rate * (1 - judge_rate), p11 - human_rate * judge_rate)


def _ppi_var(n: int, big_n: float, var_y: float, var_f: float, cov: float, power_tuning: bool
             ) -> tuple[float, float]:
    if not power_tuning:
        lam = 1.0
    elif var_f <= 0:
        lam = 0.0
    else:  # lambda* of PPI++, clipped to [0, 1] as judgekit.stats.ppi does
        lam = min(max(cov / ((1 + n / big_n) * var_f), 0.0), 1.0)
    return ((var_y - 2 * lam * cov + lam * lam * var_f) / n + lam * lam * var_f / big_n, lam)


def ppi_half_width(n: int, n_unlabeled: float, var_y: float, var_f: float, cov_yf: float, *,
                   confidence: float = 0.95, power_tuning: bool = True) -> tuple[float, float]:
    """``(half_width, lambda)`` of the PPI++ interval of the human pass rate with ``n`` human labels and
    ``n_unlabeled`` (``N``) judged answers without a label.

    The variance of :func:`judgekit.stats.ppi.ppi_pass_rate` with the population moments plugged in::

        lambda = clip(cov(Y, f) / ((1 + n/N) var(f)), 0, 1)       (1 without power tuning)
        var    = var(Y - lambda f) / n + lambda^2 var(f) / N
        half_width = z sqrt(var),   z = Phi^-1((1 + confidence) / 2)

    (before the clipping of the interval to [0, 1]). ``n_unlabeled = inf`` is a judge with unlimited verdicts.
    """
    _check_unit(confidence, "confidence")
    if n < 1 or not n_unlabeled > 0:
        raise ValueError(f"n and n_unlabeled must be positive, got {n} and {n_unlabeled}")
    var, lam = _ppi_var(n, n_unlabeled, var_y, var_f, cov_yf, power_tuning)
    return (_z((1 + confidence) / 2) * math.sqrt(max(var, 0.0)), lam)


@dataclass(frozen=True)
class LabelPlan:
    """A plan of human labels (see :func:`labels_for_half_width`).

    Attributes
    ----------
    n_labels : int
        Human labels for the PPI++ interval to have at most ``half_width``.
    n_unlabeled : float
        ``N``, the judged answers without a label, at that ``n_labels`` (``n_total - n_labels`` when the plan
        was for a fixed total).
    half_width : float
        The PPI++ half-width at ``n_labels``.
    lam : float
        The power-tuning weight at ``n_labels``.
    n_human_only : int
        Human labels for a human-only CLT interval (``var(Y) / n``) of the same half-width.
    target, confidence, var_y, var_f, cov_yf, power_tuning
        The inputs.
    """

    n_labels: int
    n_unlabeled: float
    half_width: float
    lam: float
    n_human_only: int
    target: float
    confidence: float
    var_y: float
    var_f: float
    cov_yf: float
    power_tuning: bool

    @property
    def labels_saved(self) -> float:
        """``1 - n_labels / n_human_only``: the share of human labels the judge saves."""
        return 1 - self.n_labels / self.n_human_only if self.n_human_only else math.nan

    def to_dict(self) -> dict[str, Any]:
        d = json_ready(asdict(self))
        d["labels_saved"] = json_ready(self.labels_saved)
        return d


def labels_for_half_width(half_width: float, var_y: float, var_f: float, cov_yf: float, *,
                          n_unlabeled: float | None = None, n_total: int | None = None, confidence: float = 0.95,
                          power_tuning: bool = True) -> LabelPlan:
    """The fewest human labels ``n`` for a PPI++ interval of the human pass rate with a half-width of at most
    ``half_width`` (:func:`ppi_half_width`), and the human-only count for comparison.

    Give either ``n_unlabeled`` (``N`` judged answers without a label, whatever ``n``) or ``n_total`` (every one
    of ``n_total`` answers is judged and ``n`` of them labelled: ``N = n_total - n``, as
    :func:`judgekit.stats.ppi.ppi_pass_rates` splits them). ``var_y``, ``var_f``, ``cov_yf``: the variance of
    the human verdict, of the judge's verdict and their covariance (a pilot's, ddof=1, or
    :func:`moments_from_agreement`). The human-only plan is the CLT one, ``ceil(z^2 var(Y) / half_width^2)``
    (the ``n_effective`` convention of :class:`~judgekit.stats.ppi.PPIEstimate`). Raises ValueError when the
    target cannot be reached (with ``n_total``: not even by labelling all but one answer) or ``var_y == 0``.
    """
    _check_unit(confidence, "confidence")
    if not (math.isfinite(half_width) and 0 < half_width <= 0.5):
        raise ValueError(f"half_width must be within (0, 0.5], got {half_width!r}")
    if (n_unlabeled is None) == (n_total is None):
        raise ValueError("give exactly one of n_unlabeled and n_total")
    if not (var_y > 0 and var_f >= 0 and cov_yf * cov_yf <= var_y * var_f * (1 + 1e-9) + 1e-15):
        raise ValueError(f"not a valid variance/covariance: var_y={var_y}, var_f={var_f}, cov_yf={cov_yf} "
                         "(var_y must be above 0: people must sometimes pass and sometimes fail)")
    z = _z((1 + confidence) / 2)
    n_human = max(2, math.ceil(z * z * var_y / half_width**2 - 1e-9))

    def big_n(n: int) -> float:
        return float(n_unlabeled) if n_unlabeled is not None else float(n_total - n)  # type: ignore[operator]

    def ok(n: int) -> bool:
        return z * math.sqrt(max(_ppi_var(n, big_n(n), var_y, var_f, cov_yf, power_tuning)[0], 0.0)) <= half_width

    if n_unlabeled is not None:
        if not n_unlabeled > 0:
            raise ValueError(f"n_unlabeled must be above 0, got {n_unlabeled}")
        n = _smallest(ok, 2)
    else:
        if n_total is None or n_total < 3:
            raise ValueError(f"n_total must be at least 3, got {n_total}")
        if not ok(n_total - 1):  # var(n) need not be monotone when N shrinks as n grows: scan up from 2
            raise ValueError(f"even {n_total - 1} labels of {n_total} answers do not reach a half-width of "
                             f"{half_width:g}")
        n = next(m for m in range(2, n_total) if ok(m)) if n_total <= 200_000 else _smallest(ok, 2)
    hw = z * math.sqrt(max(_ppi_var(n, big_n(n), var_y, var_f, cov_yf, power_tuning)[0], 0.0))
    lam = _ppi_var(n, big_n(n), var_y, var_f, cov_yf, power_tuning)[1]
    return LabelPlan(n_labels=n, n_unlabeled=big_n(n), half_width=hw, lam=lam, n_human_only=n_human,
                     target=half_width, confidence=confidence, var_y=var_y, var_f=var_f, cov_yf=cov_yf,
                     power_tuning=power_tuning)
