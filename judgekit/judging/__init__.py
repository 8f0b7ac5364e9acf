"""Stage 3, judging: a rubric, the prompt built from it, the backends that call a judge model, the parser of
its reply, the crash-safe concurrent runner and the SQLite store of every call.

- :mod:`~judgekit.judging.rubric` (YAML rubric files), :mod:`~judgekit.judging.prompt` (judge messages),
  :mod:`~judgekit.judging.parse` (reply -> scores; a parse failure is never a score);
- :mod:`~judgekit.judging.runner` (concurrency, re-asks, samples, panels, budget, resume), with
  :mod:`~judgekit.judging.control` (one call with retries; what a failed call means for the run; Ctrl-C) and
  :mod:`~judgekit.judging.claims` (runs sharing a store divide its keys), both shared with generation;
- :mod:`~judgekit.judging.store` (one row per call, claims shared between processes);
- :mod:`~judgekit.judging.backends`: the backend protocol and the lean (judgekit's own HTTP client), litellm and
  local backends.
  The local backend adapts :mod:`judgekit.local` (the in-process model code); that package never imports
  back into the backends.

May import :mod:`judgekit.io` and :mod:`judgekit.sample_data` (the shipped rubrics, by name); :mod:`judgekit.local`
only lazily, from the local backend; must not import generation, perturbation, statistics, reports or the CLI.
"""
