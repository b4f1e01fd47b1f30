"""Apply a trained run to your own data: ``python -m reproduce predict RUN_KEY|RUN_FOLDER --input PATH
--output DIR [--subset a+b]``.

:mod:`~reproduce.predict.trained` finds a finished run and rebuilds its host; :mod:`~reproduce.predict.base` is the
predictor contract and the subset rule; every other module of this package is one data set's predictor
(``@register_predictor``), found through the harness's catalog. README, "Use your trained model", has one command
per data set.
"""
