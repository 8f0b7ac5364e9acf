"""``judgekit plan``: how many items or human labels an evaluation needs (:func:`judgekit.api.plan`).

Three plans, from a pilot results file or from stated rates: ``items`` (items per model to detect a difference
between two models judged on the same items), ``width`` (items for a pass rate's Wilson interval of a given
half-width), ``labels`` (human labels for a PPI++ interval of the human pass rate, against labels alone)."""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _number, _positive_int, stdout_console

_unit = _number(0)
_positive = _number(0, above=True)


def _common(p, *, pilot_help: str) -> None:  # type: ignore[no-untyped-def]
    p.add_argument("--results", type=Path, metavar="PILOT", help=pilot_help)
    p.add_argument("--judge-label", metavar="JUDGE", help="which judge of a results file with several")
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the plan and its inputs as JSON")


def _target(p) -> None:  # type: ignore[no-untyped-def]
    g = p.add_mutually_exclusive_group()
    g.add_argument("--half-width", type=_positive, metavar="H",
                   help="target half-width of the interval (half its length), e.g. 0.03 for about +-3 points")
    g.add_argument("--width", type=_positive, metavar="W", help="target full width of the interval (= 2 H)")
    p.add_argument("--confidence", type=_unit, default=0.95, help="interval level (default 0.95)")


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    pl = sub.add_parser("plan", help="how many items or human labels an evaluation needs (power, interval width, "
                                     "PPI labels)",
                        description="Plan an evaluation from a pilot results file or from stated rates. See README, "
                                    "'Comparing models honestly: planning'.")
    kinds = pl.add_subparsers(dest="plan", required=True, metavar="PLAN")

    it = kinds.add_parser("items", help="items per model to detect a difference between two models (paired)",
                          description="Items per model for a paired comparison (both models judged on the same "
                                      "items) to detect a pass-rate difference (McNemar) or a mean-score difference "
                                      "(paired t) at a given power and two-sided alpha; normal approximation.")
    _common(it, pilot_help="pilot results of 'judgekit judge' with both models (gives the discordance or the sd "
                           "of the per-item differences, and the observed difference)")
    it.add_argument("--model-a", metavar="MODEL", help="the first model of the pilot")
    it.add_argument("--model-b", metavar="MODEL", help="the second model; differences are B - A")
    it.add_argument("--metric", default="pass", metavar="METRIC",
                    help="pass (pass rate, default), overall (mean overall score) or a criterion's mean score")
    it.add_argument("--diff", type=_number(), metavar="D",
                    help="the difference to detect (B - A; default: the pilot's observed one)")
    it.add_argument("--rate-a", type=_unit, metavar="P", help="stated pass rate of model A (no pilot)")
    it.add_argument("--rate-b", type=_unit, metavar="P", help="stated pass rate of model B (no pilot)")
    it.add_argument("--correlation", type=_number(-1), metavar="R",
                    help="correlation (phi) of the two models' verdicts on an item, e.g. 0.5; with a pilot: "
                         "kept at the target rates instead of the pilot's discordance")
    it.add_argument("--discordance", type=_unit, metavar="Q",
                    help="share of items on which exactly one model passes (overrides the pilot's)")
    it.add_argument("--sd-diff", type=_positive, metavar="S",
                    help="score metrics: sd of the per-item differences B - A (default: the pilot's)")
    it.add_argument("--power", type=_unit, default=0.8, help="power (default 0.8)")
    it.add_argument("--alpha", type=_unit, default=0.05, help="two-sided significance level (default 0.05)")

    wd = kinds.add_parser("width", help="items for a pass rate's interval of a given half-width (Wilson)",
                          description="Items for the Wilson interval of a pass rate to have at most a given "
                                      "half-width, at the worst-case rate 0.5 (default), a stated --rate, or a "
                                      "pilot's rate.")
    _common(wd, pilot_help="pilot results: the plan uses the pass rate of --model, or of the model nearest 0.5")
    _target(wd)
    wd.add_argument("--rate", type=_unit, metavar="P", help="the pass rate to plan for (default: worst case 0.5)")
    wd.add_argument("--model", metavar="MODEL", help="with --results: the model whose rate is used")

    lb = kinds.add_parser("labels", help="human labels for a PPI++ interval of the human pass rate",
                          description="Human labels for a prediction-powered (PPI++) interval of the human pass "
                                      "rate of a given half-width, given the judge's agreement with people on a "
                                      "pilot (or stated rates), compared with human labels alone.")
    _common(lb, pilot_help="pilot results of the judge (every answer judged; some rated by people)")
    lb.add_argument("--human", type=Path, metavar="RATINGS",
                    help="human ratings of some of the pilot's answers (as for 'judgekit agree')")
    _target(lb)
    n = lb.add_mutually_exclusive_group()
    n.add_argument("--unlabeled", type=_positive_int, metavar="N",
                   help="judged answers without a human label (besides the labelled ones)")
    n.add_argument("--judged", type=_positive_int, metavar="M",
                   help="judged answers in all, of which n get a human label (N = M - n)")
    lb.add_argument("--model", metavar="MODEL", help="with --results: plan for this model only (default: each)")
    lb.add_argument("--criterion", default="overall", help="the ratings' criterion (default overall)")
    lb.add_argument("--threshold", type=_number(), default=3.0,
                    help="human pass = mean rating >= threshold (default 3); binary labels: the majority")
    lb.add_argument("--human-rate", type=_unit, metavar="P", help="stated human pass rate (no pilot)")
    lb.add_argument("--judge-rate", type=_unit, metavar="P", help="stated judge pass rate (no pilot)")
    lb.add_argument("--agreement", type=_unit, metavar="A",
                    help="stated share of answers on which the judge and people agree (no pilot)")
    lb.add_argument("--no-power-tuning", action="store_true", help="classic PPI (lambda = 1) instead of PPI++")


def run(args: argparse.Namespace) -> int:
    from judgekit.api import plan

    common = {"json": args.json, "judge_label": args.judge_label}
    if args.plan == "items":
        result = plan("items", args.results, model_a=args.model_a, model_b=args.model_b, metric=args.metric,
                      diff=args.diff, rate_a=args.rate_a, rate_b=args.rate_b, correlation=args.correlation,
                      discordance=args.discordance, sd_diff=args.sd_diff, power=args.power, alpha=args.alpha,
                      **common)
    elif args.plan == "width":
        result = plan("width", args.results, half_width=args.half_width, width=args.width, rate=args.rate,
                      model=args.model, confidence=args.confidence, **common)
    else:
        result = plan("labels", args.results, args.human, half_width=args.half_width, width=args.width,
                      unlabeled=args.unlabeled, judged=args.judged, model=args.model, human_rate=args.human_rate,
                      judge_rate=args.judge_rate, agreement=args.agreement, criterion=args.criterion,
                      threshold=args.threshold, confidence=args.confidence,
                      power_tuning=not args.no_power_tuning, **common)
    out = stdout_console()
    for thing in result.renderables():
        out.print(thing)
    if args.json is not None:
        out.print(f"plan -> {args.json}")
    return 0
