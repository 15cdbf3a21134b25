"""Tail averaging of the clustering phase: the model handed out is the mean of the trainable weights at the ends
of the last few clustering epochs, while training continues from the live weights.

Why: at a constant lr the deep k-means phase moves the cluster accuracy by several points from one epoch to the
next, and without labels nothing tells a good epoch from a bad one. Weights a few epochs apart lie in one basin
(slow centroids keep the clusters' identities), so their mean sits near its centre and is steadier than any one
epoch's end point (stochastic weight averaging). Only trainable weights are averaged: the input statistics are
constants and the random-generator states must not be mixed.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class TailAverage:
    """The last ``n`` end-of-epoch copies of a model's trainable weights (host memory: ``n`` x the weights)."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"train.average_epochs must be >= 1, got {n}")
        self.window: deque[list[np.ndarray]] = deque(maxlen=n)

    def __len__(self) -> int:
        return len(self.window)

    def add(self, model) -> None:
        """Keep a copy of ``model``'s trainable weights (its Keras variables: pull them from the engine first)."""
        self.window.append([np.array(v.numpy(), copy=True) for v in model.trainable_variables])

    def mean(self) -> list[np.ndarray]:
        """The mean over the window, in ``model.trainable_variables`` order."""
        stacks = zip(*self.window, strict=True)
        return [np.mean(stack, axis=0, dtype=np.float64).astype(stack[0].dtype) for stack in stacks]

    def latest(self) -> list[np.ndarray]:
        return self.window[-1]

    def copies(self) -> list[list[np.ndarray]]:
        """The copies held, oldest first (what a checkpoint stores)."""
        return list(self.window)

    def restore(self, copies: list[list[np.ndarray]]) -> None:
        """Take the copies of a checkpoint (oldest first), keeping the newest ``n``."""
        self.window.clear()
        self.window.extend(copies)


def assign_trainable(model, values: list[np.ndarray]) -> None:
    """Set ``model``'s trainable variables to ``values`` (in ``model.trainable_variables`` order)."""
    for v, x in zip(model.trainable_variables, values, strict=True):
        v.assign(x)


def full_weights(model, trainable: list[np.ndarray]) -> list[np.ndarray]:
    """``model.get_weights()`` with the trainable entries replaced by ``trainable``: the form the loop keeps for
    the epoch selected on val and restores with ``model.set_weights``."""
    position = {id(v): i for i, v in enumerate(model.trainable_variables)}
    return [np.array(trainable[position[id(v)]]) if id(v) in position else np.array(v.numpy())
            for v in model.weights]
