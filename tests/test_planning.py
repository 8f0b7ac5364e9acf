"""Planning (``judgekit plan``, :mod:`judgekit.stats.planning`): every formula checked against a seeded
simulation of the test or interval it plans for (achieved power and widths within a few points of the plan),
the CLI end to end on the shipped sample and on real human labels, and the refusals (exit 2, flag named)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, norm
from scipy.stats import t as student_t
from test_cli_e2e import flat, jk

from judgekit.cli import main
from judgekit.stats.aggregate import wilson_interval
from judgekit.stats.planning import (
    discordance_from_rates,
    items_for_half_width,
    items_for_paired_means,
    items_for_paired_rates,
    items_for_two_rates,
    labels_for_half_width,
    moments_from_agreement,
    paired_mean_power,
    paired_rate_power,
    ppi_half_width,
    wilson_half_width,
)
from judgekit.stats.ppi import ppi_pass_rate

NQ = Path(__file__).resolve().parents[1] / "judgekit" / "local" / "devsets" / "nq301_dev.tsv.gz"
Z975 = float(norm.ppf(0.975))


# ------------------------------------------------------------------------------ (a) paired pass rates


def _cells(rate_a: float, rate_b: float, corr: float) -> np.ndarray:
    """(p11, p10, p01, p00) of two binary outcomes with these rates and this phi correlation."""
    p10, p01 = discordance_from_rates(rate_a, rate_b, corr)
    p11 = rate_a - p10
    return np.array([p11, p10, p01, 1 - p11 - p10 - p01])


def test_discordance_from_rates_has_the_stated_margins_and_correlation() -> None:
    c = _cells(0.6, 0.7, 0.5)
    p11, p10, p01, p00 = c
    assert p11 + p10 == pytest.approx(0.6) and p11 + p01 == pytest.approx(0.7) and c.min() >= 0
    phi = (p11 * p00 - p10 * p01) / math.sqrt(0.6 * 0.4 * 0.7 * 0.3)
    assert phi == pytest.approx(0.5)
    with pytest.raises(ValueError, match="impossible"):
        discordance_from_rates(0.1, 0.9, 0.9)


@pytest.mark.parametrize(("rate_a", "rate_b", "corr", "power"),
                         [(0.6, 0.7, 0.5, 0.8), (0.3, 0.45, 0.2, 0.9), (0.7, 0.8, 0.4, 0.8)])
def test_paired_rate_plan_reaches_its_power_in_simulation(rate_a: float, rate_b: float, corr: float,
                                                           power: float) -> None:
    """Simulated pairs with the stated correlation, the McNemar test the plan assumes (two-sided 5 %, normal
    approximation): the achieved power is the planned one within 3 points (4000 runs: 1 SE ~ 0.7 point)."""
    p10, p01 = discordance_from_rates(rate_a, rate_b, corr)
    n = items_for_paired_rates(rate_b - rate_a, p10 + p01, power=power)
    assert paired_rate_power(n, rate_b - rate_a, p10 + p01) >= power > paired_rate_power(n - 1, rate_b - rate_a,
                                                                                            p10 + p01)
    rng = np.random.default_rng(12345)
    counts = rng.multinomial(n, _cells(rate_a, rate_b, corr), size=4000)
    n10, n01 = counts[:, 1], counts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(n10 + n01 > 0, (n01 - n10) / np.sqrt(n10 + n01), 0.0)
    achieved = float(np.mean(z > Z975))
    assert achieved == pytest.approx(power, abs=0.03), (n, achieved)
    # the exact McNemar test (what judgekit report runs) is a little conservative, never more powerful
    p_exact = np.minimum(1.0, 2 * binom.cdf(np.minimum(n10, n01), n10 + n01, 0.5))
    exact = float(np.mean((p_exact < 0.05) & (n01 > n10)))
    assert power - 0.08 < exact <= achieved + 0.005, exact
    # pairing pays: independent samples need more items per model when the outcomes correlate positively
    assert items_for_two_rates(rate_a, rate_b, power=power) > n


def test_paired_rate_plan_is_conservative_with_few_lopsided_discordant_pairs() -> None:
    """0.8 vs 0.88 with phi 0.6: about 16 discordant pairs, 85 % of them one way; the normal approximation then
    plans a few more items than needed (achieved power above the plan, never below it)."""
    p10, p01 = discordance_from_rates(0.8, 0.88, 0.6)
    n = items_for_paired_rates(0.08, p10 + p01)
    counts = np.random.default_rng(3).multinomial(n, _cells(0.8, 0.88, 0.6), size=4000)
    n10, n01 = counts[:, 1], counts[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(n10 + n01 > 0, (n01 - n10) / np.sqrt(n10 + n01), 0.0)
    assert 0.8 <= float(np.mean(z > Z975)) <= 0.87


def test_independent_plan_reaches_its_power_in_simulation() -> None:
    n = items_for_two_rates(0.6, 0.7)
    rng = np.random.default_rng(7)
    xa, xb = rng.binomial(n, 0.6, 4000) / n, rng.binomial(n, 0.7, 4000) / n
    p = (xa + xb) / 2
    z = (xb - xa) / np.sqrt(2 * p * (1 - p) / n)
    assert float(np.mean(z > Z975)) == pytest.approx(0.8, abs=0.03)


def test_paired_rate_refusals() -> None:
    with pytest.raises(ValueError, match="discordance"):
        items_for_paired_rates(0.3, 0.2)
    with pytest.raises(ValueError, match="non-zero"):
        items_for_paired_rates(0.0, 0.2)


# ------------------------------------------------------------------------------ (a) paired mean scores


_DIFFS = np.array([0.05, 0.15, 0.4, 0.25, 0.15])  # P(score_B - score_A = -2, ..., 2): 1-5 scores differ so


@pytest.mark.parametrize(("diff", "sd", "discrete"), [(0.3, 1.2, False), (0.5, 1.3, False), (None, None, True)])
def test_paired_mean_plan_reaches_its_power_with_the_t_test(diff: float | None, sd: float | None,
                                                            discrete: bool) -> None:
    """Simulated per-item differences (normal, or on the integers -2..2 as 1-5 scores give), the two-sided
    paired t-test at 5 %: achieved power within 3 points of the plan's 80 %."""
    support = np.arange(-2, 3)
    if discrete:
        diff = float(_DIFFS @ support)
        sd = math.sqrt(float(_DIFFS @ (support - diff) ** 2))
    assert diff is not None and sd is not None
    n = items_for_paired_means(diff, sd)
    assert paired_mean_power(n, diff, sd) >= 0.8
    rng = np.random.default_rng(99)
    reps = 4000
    if discrete:
        d = rng.choice(support, size=(reps, n), p=_DIFFS).astype(float)
    else:
        d = rng.normal(diff, sd, size=(reps, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    achieved = float(np.mean(t > student_t.ppf(0.975, n - 1)))
    assert achieved == pytest.approx(0.8, abs=0.03), (n, achieved)


# ------------------------------------------------------------------------------------ (b) Wilson widths


def test_wilson_half_width_is_judgekits_wilson_interval() -> None:
    for k, n in ((0, 10), (3, 10), (400, 1000), (999, 1000), (50, 100)):
        low, high = wilson_interval(k, n)
        assert wilson_half_width(n, k / n) == pytest.approx((high - low) / 2, rel=1e-9)


@pytest.mark.parametrize(("half_width", "rate"), [(0.03, 0.5), (0.05, 0.8), (0.02, 0.1), (0.1, 0.5)])
def test_width_plan_gives_intervals_of_that_half_width(half_width: float, rate: float) -> None:
    """Simulated pass counts at the planned n: the Wilson half-widths average the target within 3 % (slightly
    below: the observed rate scatters away from the planned one); at the worst case 0.5 every interval is within
    the target, whatever the rate observed."""
    n = items_for_half_width(half_width, rate)
    assert wilson_half_width(n, rate) <= half_width < wilson_half_width(n - 1, rate)
    rng = np.random.default_rng(2024)
    k = rng.binomial(n, rate, size=20000)
    z = Z975
    p = k / n
    hw = z * np.sqrt(p * (1 - p) * n + z * z / 4) / (n + z * z)
    assert float(hw.mean()) == pytest.approx(half_width, rel=0.03), (n, float(hw.mean()))
    if rate == 0.5:
        assert float(hw.max()) <= half_width + 1e-12
        assert n == items_for_half_width(half_width)  # 0.5 is the default


def test_worst_case_is_the_largest_plan() -> None:
    worst = items_for_half_width(0.03)
    assert worst == 1064  # z^2 / (4 h^2) - z^2 = 1063.3, rounded up
    assert all(items_for_half_width(0.03, r) <= worst for r in np.linspace(0, 1, 21))


# ------------------------------------------------------------------------------------------- (c) PPI++


def _draw_pairs(rng: np.random.Generator, size: int, human_rate: float, judge_rate: float, agreement: float
                ) -> tuple[np.ndarray, np.ndarray]:
    p11 = (agreement - 1 + human_rate + judge_rate) / 2
    probs = [1 - human_rate - judge_rate + p11, human_rate - p11, judge_rate - p11, p11]  # (f, y) 00, 01, 10, 11
    cell = rng.choice(4, size=size, p=probs)
    return cell // 2, cell % 2  # f, y


@pytest.mark.parametrize(("human_rate", "judge_rate", "agreement", "unlabeled", "total"),
                         [(0.6, 0.65, 0.85, 2000, None), (0.3, 0.3, 0.95, None, 3000), (0.5, 0.7, 0.7, 4000, None)])
def test_labels_plan_gives_ppi_intervals_of_that_half_width(human_rate: float, judge_rate: float, agreement: float,
                                                            unlabeled: int | None, total: int | None) -> None:
    """Simulated judge and human verdicts with the stated rates and agreement, ``ppi_pass_rate`` (PPI++, as
    ``judgekit agree`` reports it) at the planned n: the mean half-width is the target within 3 %, lambda is the
    planned one, and the interval covers the human rate about 95 % of the time."""
    target = 0.03
    var_y, var_f, cov = moments_from_agreement(human_rate, judge_rate, agreement)
    plan = labels_for_half_width(target, var_y, var_f, cov, n_unlabeled=unlabeled, n_total=total)
    n, big_n = plan.n_labels, int(plan.n_unlabeled)
    assert plan.half_width <= target < ppi_half_width(n - 1, big_n + (1 if total else 0), var_y, var_f, cov)[0]
    assert plan.n_labels < plan.n_human_only
    rng = np.random.default_rng(31)
    widths, lams, covered = [], [], 0
    for _ in range(400):
        f_lab, y_lab = _draw_pairs(rng, n, human_rate, judge_rate, agreement)
        f_unl, _ = _draw_pairs(rng, big_n, human_rate, judge_rate, agreement)
        e = ppi_pass_rate(f_unl, f_lab, y_lab)
        widths.append((e.ci_high - e.ci_low) / 2)
        lams.append(e.lam)
        covered += e.ci_low <= human_rate <= e.ci_high
    assert float(np.mean(widths)) == pytest.approx(target, rel=0.03), (n, float(np.mean(widths)))
    assert float(np.mean(lams)) == pytest.approx(plan.lam, abs=0.03)
    assert covered / 400 == pytest.approx(0.95, abs=0.035)
    # labels alone: the CLT half-width at the human-only plan is the target too
    y = rng.binomial(1, human_rate, size=(2000, plan.n_human_only))
    hw_human = Z975 * y.std(axis=1, ddof=1) / math.sqrt(plan.n_human_only)
    assert float(hw_human.mean()) == pytest.approx(target, rel=0.02)


def test_labels_plan_limits() -> None:
    var_y, var_f, cov = moments_from_agreement(0.5, 0.5, 1.0)  # a perfect judge: the unlabelled answers decide
    few = labels_for_half_width(0.01, var_y, var_f, cov, n_unlabeled=100)  # 100 more answers help little
    assert few.n_human_only - 110 < few.n_labels < few.n_human_only
    with pytest.raises(ValueError, match="do not reach"):  # 500 answers in all never give +-1 point
        labels_for_half_width(0.01, var_y, var_f, cov, n_total=500)
    useless = labels_for_half_width(0.05, *moments_from_agreement(0.5, 0.5, 0.5), n_unlabeled=10_000)
    assert useless.lam == 0 and useless.n_labels == useless.n_human_only  # PPI++ falls back to labels alone
    classic = labels_for_half_width(0.05, *moments_from_agreement(0.5, 0.5, 0.5), n_unlabeled=10_000,
                                    power_tuning=False)
    assert classic.n_labels > useless.n_labels  # classic PPI with a useless judge is worse than labels alone
    with pytest.raises(ValueError, match="impossible"):
        moments_from_agreement(0.2, 0.8, 0.9)


# ------------------------------------------------------------------------------------------ CLI end to end


def _sample_pilot(tmp: Path) -> Path:
    """Results for the shipped sample's responses (24 items x 3 models), with seeded verdicts that correlate
    across models as real ones do (a hard item is hard for every model)."""
    from judgekit.sample_data import sample_responses

    responses = [json.loads(line) for line in sample_responses().read_text().splitlines() if line.strip()]
    rng = random.Random(5)
    ease = {r["id"]: rng.random() for r in responses}
    skill = {"weak-vlm": 0.35, "medium-vlm": 0.6, "strong-vlm": 0.8}
    out = tmp / "pilot.jsonl"
    with out.open("w") as fh:
        for r in responses:
            u = 0.6 * ease[r["id"]] + 0.4 * rng.random()
            overall = float(min(5, max(1, round(1 + 4 * u * skill[r["model"]] / 0.6))))
            fh.write(json.dumps({"id": r["id"], "model": r["model"], "condition": r.get("condition"),
                                 "judge": "pilot-judge", "status": "scored", "scores": {"accuracy": overall},
                                 "overall": overall, "passed": overall >= 3}) + "\n")
    return out


def test_cli_items_on_the_sample(tmp_path: Path) -> None:
    pilot = _sample_pilot(tmp_path)
    rows = [json.loads(x) for x in pilot.read_text().splitlines()]
    a = {r["id"]: r["passed"] for r in rows if r["model"] == "medium-vlm"}
    b = {r["id"]: r["passed"] for r in rows if r["model"] == "strong-vlm"}
    disc = sum(a[i] != b[i] for i in a) / len(a)
    out = tmp_path / "plan.json"
    r = jk("plan", "items", "--results", pilot, "--model-a", "medium-vlm", "--model-b", "strong-vlm",
           "--diff", "0.1", "--json", out)
    assert r.returncode == 0, r.stderr
    plan = json.loads(out.read_text())
    assert plan["rows"][0]["n"] == items_for_paired_rates(0.1, disc)
    assert plan["inputs"]["pilot pairs"] == 24 and plan["inputs"]["pilot discordance"] == pytest.approx(disc)
    text = flat(r.stdout)
    assert "Items per model" in text and str(plan["rows"][0]["n"]) in text and "pilot discordance" in text


def test_cli_labels_with_real_human_labels(tmp_path: Path) -> None:
    """NQ-open answers judged by GPT-4 (every answer) with the human majority label on a random 150 of them."""
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(NQ.read_bytes()).decode()), delimiter="\t"))
    results, ratings = tmp_path / "results.jsonl", tmp_path / "ratings.csv"
    with results.open("w") as fh:
        for i, row in enumerate(rows):
            yes = row["gpt4_label"] == "Yes"
            fh.write(json.dumps({"id": f"r{i}", "model": "qa", "judge": "gpt-4", "status": "scored", "passed": yes,
                                 "overall": 5.0 if yes else 1.0, "scores": {}}) + "\n")
    labelled = sorted(random.Random(0).sample(range(len(rows)), 150))
    with ratings.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "human"])
        for i in labelled:
            w.writerow([f"r{i}", rows[i]["human"]])
    out = tmp_path / "plan.json"
    r = jk("plan", "labels", "--results", results, "--human", ratings, "--width", "0.06", "--unlabeled", "5000",
           "--json", out)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["rows"][0]
    y = np.array([rows[i]["human"] == "Yes" for i in labelled], float)
    f = np.array([rows[i]["gpt4_label"] == "Yes" for i in labelled], float)
    f_all = np.array([row_["gpt4_label"] == "Yes" for row_ in rows], float)
    var_y, cov, var_f = y.var(ddof=1), np.cov(y, f, ddof=1)[0, 1], f_all.var(ddof=1)
    want = labels_for_half_width(0.03, var_y, var_f, cov, n_unlabeled=5000)
    assert row["n"] == want.n_labels and row["n human-only"] == want.n_human_only
    assert row["n"] < 0.7 * row["n human-only"]  # GPT-4 agrees with people ~85 %: PPI saves over 30 % of labels
    assert "PPI++" in flat(r.stdout)


def _code(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = main(["plan", *map(str, argv)])
    return code, capsys.readouterr().err


def test_cli_stated_rates_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    assert _code(capsys, "items", "--rate-a", "0.6", "--rate-b", "0.7", "--correlation", "0.5", "--json", out)[0] == 0
    assert json.loads(out.read_text())["rows"][0]["n"] == 183
    assert _code(capsys, "width", "--half-width", "0.03", "--json", out)[0] == 0
    assert json.loads(out.read_text())["rows"][0]["n"] == 1064
    assert _code(capsys, "labels", "--human-rate", "0.6", "--judge-rate", "0.65", "--agreement", "0.85",
                 "--half-width", "0.03", "--judged", "5000", "--json", out)[0] == 0
    assert json.loads(out.read_text())["rows"][0]["n"] == labels_for_half_width(
        0.03, *moments_from_agreement(0.6, 0.65, 0.85), n_total=5000).n_labels
    assert _code(capsys, "items", "--metric", "overall", "--diff", "0.3", "--sd-diff", "1.2", "--json", out)[0] == 0
    assert json.loads(out.read_text())["rows"][0]["n"] == items_for_paired_means(0.3, 1.2)


@pytest.mark.parametrize(("argv", "flag"), [
    (["items", "--model-a", "nobody", "--model-b", "strong-vlm"], "--model-a"),
    (["items", "--model-a", "medium-vlm"], "--model-b"),
    (["items", "--model-a", "medium-vlm", "--model-b", "strong-vlm", "--diff", "0.9"], "--diff"),
    (["items", "--model-a", "medium-vlm", "--model-b", "strong-vlm", "--metric", "nope"], "--metric"),
    (["items", "--rate-a", "0.6"], "--rate-b"),
    (["items", "--rate-a", "0.1", "--rate-b", "0.9", "--correlation", "0.9"], "--correlation"),
    (["items", "--rate-a", "0.6", "--rate-b", "0.7"], "--correlation"),
    (["items", "--rate-a", "0.6", "--rate-b", "0.7", "--correlation", "0.5", "--power", "1.5"], "--power"),
    (["width"], "--half-width"),
    (["width", "--half-width", "0.7"], "--half-width"),
    (["width", "--half-width", "0.03", "--model", "nobody"], "--model"),
    (["labels", "--half-width", "0.03", "--human-rate", "0.5", "--judge-rate", "0.5", "--agreement", "0.9"],
     "--unlabeled"),
    (["labels", "--half-width", "0.03", "--unlabeled", "100"], "--human"),
    (["labels", "--half-width", "0.03", "--unlabeled", "100", "--human-rate", "0.5"], "--judge-rate"),
    (["labels", "--half-width", "0.01", "--judged", "500", "--human-rate", "0.5", "--judge-rate", "0.5",
      "--agreement", "0.9"], "--half-width"),
])
def test_bad_input_exits_2_naming_the_flag(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                          flag: str) -> None:
    pilot = _sample_pilot(tmp_path)
    if "--model-a" in argv or (argv[0] == "width" and "--model" in argv):
        argv = [*argv, "--results", str(pilot)]
    if argv[0] == "labels" and "--human-rate" not in argv:
        argv = [*argv, "--results", str(pilot)]
    code, err = _code(capsys, *argv)
    assert code == 2 and f"'{flag}'" in err and "Traceback" not in err, err


def test_pilot_too_small_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("".join(line + "\n" for line in _sample_pilot(tmp_path).read_text().splitlines()
                             if json.loads(line)["id"].endswith(("1", "2"))))
    code, err = _code(capsys, "items", "--results", small, "--model-a", "medium-vlm", "--model-b", "strong-vlm")
    assert code == 2 and "pilot too small" in err and "'--results'" in err, err


def test_cli_bad_input_subprocess_has_no_traceback(tmp_path: Path) -> None:
    r = jk("plan", "items", "--results", _sample_pilot(tmp_path), "--model-a", "nobody", "--model-b", "weak-vlm")
    assert r.returncode == 2 and "'--model-a'" in r.stderr and "nobody" in r.stderr and "Traceback" not in r.stderr
