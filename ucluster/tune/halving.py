"""Successive halving for remote trials: epoch budgets per rung, and who goes on to the next rung.

Optuna's own pruners decide inside the objective, in the process that trains. Our trials train in Spark
tasks, so the driver decides between rungs instead: every trial first trains for the rung-0 budget; the
driver reads its per-epoch ``val_cluster_acc``, reports it to the Optuna trial, and lets the trial resume
(from its checkpoint, continuing the same MLflow run) for the next rung's budget only if its value is in the
top ``1 / reduction_factor`` of all values recorded at that rung so far. That is the promotion rule of
Optuna's ``SuccessiveHalvingPruner`` (asynchronous successive halving), applied once a whole batch has
reached the rung so that the order in which results arrive does not matter.
"""

from __future__ import annotations

import math


def rung_budgets(epochs: int, pretrain_epochs: int, rungs: int, reduction_factor: int) -> list[int]:
    """Total epochs a trial has trained at the end of each rung; the last one is always ``epochs``.

    Rung r nominally ends after ``epochs / reduction_factor ** (rungs - 1 - r)`` epochs, but never before one
    clustering epoch has run: the value compared between trials is a clustering accuracy, and a rung that
    ended inside pretraining would leave k-means centroids that a resumed run could not reproduce.
    """
    if epochs < 1 or rungs < 1 or reduction_factor < 2:
        raise ValueError("epochs and rungs must be positive and reduction_factor at least 2")
    floor = min(pretrain_epochs + 1, epochs)
    budgets: list[int] = []
    for r in range(rungs):
        b = min(epochs, max(floor, math.ceil(epochs / reduction_factor ** (rungs - 1 - r))))
        if not budgets or b > budgets[-1]:
            budgets.append(b)
    return budgets


def promotable(value: float, competing: list[float], reduction_factor: int) -> bool:
    """Is ``value`` (maximised) in the top 1/reduction_factor of ``competing`` (which includes it)?

    As in Optuna, while fewer than ``reduction_factor`` values compete only the best one goes on.
    """
    if not math.isfinite(value):
        return False
    ranked = sorted((v for v in competing if math.isfinite(v)), reverse=True)
    idx = max(len(ranked) // reduction_factor - 1, 0)
    return bool(ranked) and value >= ranked[idx]
