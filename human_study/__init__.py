"""The human rating study of judgekit (``judgekit study ...``): choose the answers to rate, hand each rater a secret
link, collect scores on the judge's own rubric in a small web app, export them for ``judgekit agree``.

Modules: :mod:`human_study.store` (the SQLite study database), :mod:`human_study.design` (sampling and the
balanced assignment of items to raters), :mod:`human_study.exchange` (export and import of ratings: the long CSV
``judgekit agree`` reads, Label Studio, Argilla), :mod:`human_study.app` (the web app: Starlette + Jinja2,
served by uvicorn). The web app's packages are the ``study`` extra: ``pip install 'judgekit[study]'``.
"""
