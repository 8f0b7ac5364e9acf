"""Stage 0, records and files: what flows between the stages, and how it is read and written.

- :mod:`~judgekit.io.records`: the pydantic records (``Item``, ``Response``, ``Judgment``, ``SampleResult``);
- :mod:`~judgekit.io.dataio`: responses, items and judgments files (.jsonl, .csv, .parquet) with per-row checks;
- :mod:`~judgekit.io.strictjson`: strict JSON text (no duplicate keys, NaN, lone surrogates, deep nesting);
- :mod:`~judgekit.io.atomic`: atomic writes (temp file + rename, stale temp files removed, valid JSON only);
- :mod:`~judgekit.io.ratings`: human ratings files (long and wide);
- :mod:`~judgekit.io.images`: image paths, header checks, data URLs;
- :mod:`~judgekit.io.yamlpos`: YAML with line numbers for error messages;
- :mod:`~judgekit.io.errors`: :class:`JudgekitError` (the message a user sees, with file and line);
- :mod:`~judgekit.io.redact`: secrets masked in every text written or shown.

Must not import any other judgekit package: every stage imports this one.
"""
