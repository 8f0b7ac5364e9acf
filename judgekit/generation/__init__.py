"""Stage 2, generation: the candidate models' answers to the items (:mod:`~judgekit.generation.candidates`,
through the same runner and store as judging) and multiple-choice scoring (:mod:`~judgekit.generation.mcq`).

May import :mod:`judgekit.io` and :mod:`judgekit.judging`; must not import statistics, reports or the CLI.
"""
