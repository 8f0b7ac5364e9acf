"""Stage 3, judging: a rubric, the prompt built from it, the backends that call a judge model, the parser of
its reply, the crash-safe concurrent runner and the SQLite store of every call.

- :mod:`~judgekit.judging.rubric` (YAML rubric files), :mod:`~judgekit.judging.prompt` (judge messages),
  :mod:`~judgekit.judging.parse` (reply -> scores; a parse failure is never a score);
- :mod:`~judgekit.judging.runner` (concurrency, retries, re-asks, budget, resume) and
  :mod:`~judgekit.judging.store` (one row per call, claims shared between processes);
- :mod:`~judgekit.judging.backends`: the backend protocol and the lean (aiohttp), litellm and local backends.
  The local backend adapts :mod:`judgekit.local` (the in-process model code); that package never imports
  back into the backends.

May import :mod:`judgekit.io`; must not import statistics, reports or the CLI.
"""
