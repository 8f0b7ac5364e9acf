"""``judgekit study``: the human rating study (:mod:`human_study`): ``create`` a study folder from a results file
(stratified sample, balanced assignment, secret links), ``serve`` the rater web app, ``export`` the ratings as the
long CSV ``judgekit agree`` reads (or a Label Studio project), ``import`` ratings gathered elsewhere.

``human_study`` is imported lazily, inside :func:`run`: nothing else in judgekit imports it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from judgekit.cli._common import _count, _positive_int, stdout_console


def add_parser(sub) -> None:  # type: ignore[no-untyped-def]
    s = sub.add_parser("study", help="a human rating study: create, serve, export, import",
                       description="Let people rate a sample of the judged answers on the judge's own rubric, then "
                                   "compare them with the judge (judgekit agree / report --human).")
    ssub = s.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")
    c = ssub.add_parser("create", help="create a study folder: sample answers, assign raters, write the links",
                        description="Sample --size scored answers of RESULTS stratified by model, category, "
                                    "condition and judge score bin, give each to --overlap of the raters (balanced "
                                    "loads, every pair of raters sharing items where possible) and write STUDY/ "
                                    "(study.sqlite, images/, links.csv with the secret links, mode 0600). Raters "
                                    "never see model names or judge scores. With --add-raters N, add raters to the "
                                    "existing study --out.")
    c.add_argument("results", type=Path, nargs="?", metavar="RESULTS", help="results file of 'judgekit judge'")
    c.add_argument("--out", type=Path, required=True, metavar="STUDY", help="the study folder (new, or empty)")
    c.add_argument("--rubric", metavar="FILE", help="the rubric the answers were judged with (file or shipped name)")
    c.add_argument("--responses", type=Path, metavar="RESPONSES",
                   help="the responses file judged (question, reference, answer, images; matched on id, model, "
                        "condition)")
    c.add_argument("--raters", type=_positive_int, metavar="N", help="number of raters")
    c.add_argument("--rater-names", metavar="A,B,C", help="the raters' names (default rater1, rater2, ...)")
    c.add_argument("--overlap", type=_positive_int, metavar="K",
                   help="raters per answer (default 2); with --add-raters: bring every answer up to K raters")
    c.add_argument("--size", type=_positive_int, default=100, metavar="M", help="answers to rate (default 100)")
    c.add_argument("--repeats", type=_count, default=0, metavar="R",
                   help="each rater sees R of their answers a second time, later (intra-rater consistency)")
    c.add_argument("--gold", type=Path, metavar="GOLD",
                   help="answers with known scores (a responses file with 'scores'), shown to every rater")
    c.add_argument("--judge", metavar="JUDGE", help="the judge of RESULTS to sample (needed when it holds several)")
    c.add_argument("--seed", type=int, default=0, help="sampling and assignment seed (default 0)")
    c.add_argument("--add-raters", type=_positive_int, metavar="N",
                   help="add N raters to the existing study --out (give them existing answers)")
    e = ssub.add_parser("export", help="export the ratings (long CSV for judgekit agree, or Label Studio)",
                        description="Write the latest rating of every main answer as the long CSV judgekit agree "
                                    "reads (id, model, condition, rater, criterion, score, time_s, revisions, kind, "
                                    "unratable, reason, comment, submitted); repeats, gold answers and unratable "
                                    "flags go to RATINGS_repeats.csv, RATINGS_gold.csv and RATINGS_unratable.csv. "
                                    "Prints each rater's progress, consistency on repeats and gold accuracy.")
    e.add_argument("study", type=Path, metavar="STUDY")
    e.add_argument("--out", type=Path, metavar="RATINGS.csv", help="the long CSV to write")
    e.add_argument("--label-studio", type=Path, metavar="OUT_DIR",
                   help="write a Label Studio project instead/as well: tasks.json, config.xml, images/")
    e.add_argument("--image-url-prefix", default="", metavar="PREFIX",
                   help="put in front of the image paths of tasks.json (e.g. '/data/local-files/?d=study/')")
    i = ssub.add_parser("import", help="convert ratings gathered elsewhere into the long CSV",
                        description="Read a long CSV, a wide CSV (id + one column per rater), a Label Studio JSON "
                                    "export or an Argilla 2.x record list and write the long CSV judgekit agree "
                                    "reads.")
    i.add_argument("source", type=Path, metavar="SOURCE")
    i.add_argument("--out", type=Path, required=True, metavar="RATINGS.csv")
    i.add_argument("--format", choices=["csv", "wide", "label-studio", "argilla"],
                   help="the source's format (default: guessed)")
    i.add_argument("--criterion", default="overall", help="wide tables: the criterion rated (default overall)")
    i.add_argument("--raters", metavar="A,B,C", help="wide tables: the rater columns (default every other column)")
    i.add_argument("--rubric", metavar="FILE",
                   help="check criteria and scales against this rubric (and map Label Studio stars onto its scale)")
    v = ssub.add_parser("serve", help="serve the rater web app of a study",
                        description="Serve the study's web app (needs the study extra: pip install 'judgekit[study]').")
    v.add_argument("study", type=Path, metavar="STUDY")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=_positive_int, default=8765, help="port (default 8765)")


def _num(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.0f} %" if pct else f"{x:.2f}"


def _create(args: argparse.Namespace) -> int:
    from rich.table import Table

    from human_study.design import add_raters, create_study
    from judgekit.io.errors import JudgekitError

    out = stdout_console()
    if args.add_raters is not None:
        for flag, value in (("RESULTS", args.results), ("--rubric", args.rubric), ("--responses", args.responses),
                            ("--gold", args.gold), ("--raters", args.raters)):
            if value is not None:
                raise JudgekitError("not used with --add-raters (the study keeps its answers; --rater-names names "
                                    "the new raters)", field=flag)
        summary = add_raters(args.out, args.add_raters, overlap=args.overlap, names=args.rater_names,
                             seed=args.seed if args.seed else None)
    else:
        for flag, value in (("RESULTS", args.results), ("--rubric", args.rubric), ("--responses", args.responses)):
            if value is None:
                raise JudgekitError("required (the judged answers, their rubric and their responses file)",
                                    field=flag)
        summary = create_study(args.results, rubric=args.rubric, responses=args.responses, out=args.out,
                               raters=args.raters, overlap=args.overlap or 2, size=args.size, repeats=args.repeats,
                               gold=args.gold, seed=args.seed, rater_names_=args.rater_names, judge=args.judge)
        strata = Table(title=f"Sample: {summary.main_items} answers by stratum")
        for col in ("model", "category", "condition", "judge overall", "available", "sampled"):
            strata.add_column(col, justify="right" if col in ("available", "sampled") else "left")
        for s in summary.strata:
            strata.add_row(s.model, s.category or "-", s.condition or "-", s.score_bin, str(s.available),
                           str(s.sampled))
        out.print(strata)
    loads = Table(title="Raters")
    for col in ("rater", "answers", "queue (with repeats, gold)"):
        loads.add_column(col)
    for r, n in summary.loads.items():
        loads.add_row(r, str(n), str(summary.queue_lengths.get(r, n)))
    out.print(loads)
    out.print(f"pairs of raters share {summary.pair_min}-{summary.pair_max} answers; "
              f"{len(summary.uncovered_pairs)} pair(s) share none", markup=False, highlight=False)
    for note in summary.notes:
        out.print(f"note: {note}", markup=False, highlight=False)
    out.print(f"study -> {summary.folder}; links (secret: hand each rater only their own) -> "
              f"{summary.folder / 'links.csv'}", markup=False, highlight=False)
    for link in summary.links:
        out.print(f"  {link.rater}: {link.url}", markup=False, highlight=False, soft_wrap=True)
    return 0


def _export(args: argparse.Namespace) -> int:
    from rich.table import Table

    from human_study.exchange import export_label_studio, export_ratings
    from judgekit.io.errors import JudgekitError

    if args.out is None and args.label_studio is None:
        raise JudgekitError("give --out RATINGS.csv and/or --label-studio OUT_DIR", field="--out")
    out = stdout_console()
    if args.out is not None:
        summary = export_ratings(args.study, args.out)
        t = Table(title="Raters")
        for col in ("rater", "done", "repeats compared", "repeat exact", "repeat mean |diff|", "gold rated",
                    "gold exact", "gold mean |diff|"):
            t.add_column(col)
        for p in summary.raters:
            t.add_row(p.rater, f"{p.done}/{p.total}", str(p.repeat_pairs), _num(p.repeat_exact, True),
                      _num(p.repeat_mad), str(p.gold_rated), _num(p.gold_exact, True), _num(p.gold_mad))
        out.print(t)
        out.print(f"{summary.rows} ratings -> {summary.files['ratings']} (main answers; for judgekit agree --human)",
                  markup=False, highlight=False)
        out.print(f"repeats -> {summary.files['repeats']}; gold -> {summary.files['gold']}; "
                  f"{summary.unratable} unratable -> {summary.files['unratable']}", markup=False, highlight=False)
    if args.label_studio is not None:
        files = export_label_studio(args.study, args.label_studio, image_prefix=args.image_url_prefix)
        out.print(f"Label Studio: tasks -> {files['tasks']}; labeling config -> {files['config']}",
                  markup=False, highlight=False)
    return 0


def _import(args: argparse.Namespace) -> int:
    from human_study.exchange import import_ratings

    s = import_ratings(args.source, args.out, fmt=args.format, criterion=args.criterion, raters=args.raters,
                       rubric=args.rubric)
    out = stdout_console()
    out.print(f"{s.rows} ratings ({s.format}; {len(s.raters)} raters; criteria {', '.join(s.criteria)}) -> {s.out}",
              markup=False, highlight=False)
    if s.skipped_unratable:
        out.print(f"{s.skipped_unratable} unratable annotation(s) left out", markup=False, highlight=False)
    for note in s.notes:
        out.print(f"note: {note}", markup=False, highlight=False)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from judgekit.io.errors import JudgekitError

    try:
        from human_study.app import serve
    except ImportError as exc:
        raise JudgekitError(f"the study web app needs the study extra (pip install 'judgekit[study]'): {exc}",
                            field="serve") from None
    serve(args.study, host=args.host, port=args.port)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``judgekit study SUBCOMMAND``."""
    return {"create": _create, "export": _export, "import": _import, "serve": _serve}[args.study_command](args)
