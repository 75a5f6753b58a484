"""The research behind the evidence page (``docs/evidence.md``): studies of SMMix on local objects at small scale.

    python -m experiments run <study> [--seeds ...] [--epochs ...] [--workers N] [--device cuda]
    python -m experiments report <study>|all [--write docs/evidence.md] [--figures docs/images/evidence]

Modules: :mod:`~experiments.regime` (canvas data, ViT, recipe, warm start), :mod:`~experiments.arms` (the arms as
``SMMixConfig`` settings), :mod:`~experiments.probe` (where the model's windows fall), :mod:`~experiments.runner`
and :mod:`~experiments.store` (training runs and their JSON Lines results), :mod:`~experiments.stats`,
:mod:`~experiments.tables`, :mod:`~experiments.long_report` and :mod:`~experiments.figures` (reports), and one
module per study under :mod:`experiments.studies`.
"""
