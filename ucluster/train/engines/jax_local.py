"""JAX on one local device (``KERAS_BACKEND=jax``): the GPU engine of the one training loop.

Follows Keras 3's pattern for custom JAX training loops: the model and the optimizer are used statelessly
(``model.stateless_call``, ``optimizer.stateless_apply``), their variables travel as an explicit state tuple
through a jit-compiled pure step whose input state is donated, and :meth:`JaxLocalEngine.pull` copies the state
back into the Keras variables when the loop needs them (checkpoints, saving). jax is imported inside the
functions only, so importing this module never requires jax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ucluster.train.engine import SingleProcessCollectives, ucluster_loss

State = tuple[list[Any], list[Any], list[Any]]  # (trainable, non-trainable, optimizer variables)
STEP_KEYS = ("features", "mask", "target")


def _check_backend() -> None:
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(f"the JAX engine needs KERAS_BACKEND=jax, the Keras backend is {backend}")


def init_state(model: keras.Model, optimizer: keras.optimizers.Optimizer) -> State:
    """Copies of the model's and optimizer's variables (building the optimizer if needed).

    Copies, because the step donates its input state: donating the variables' own buffers would invalidate
    them inside the Keras model.
    """
    _check_backend()
    import jax.numpy as jnp

    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return (
        [jnp.array(v.value, copy=True) for v in model.trainable_variables],
        [jnp.array(v.value, copy=True) for v in model.non_trainable_variables],
        [jnp.array(v.value, copy=True) for v in optimizer.variables],
    )


def write_state_back(model: keras.Model, optimizer: keras.optimizers.Optimizer, state: State) -> None:
    """Assign a state returned by the step to the Keras variables of the model and the optimizer."""
    trainable, non_trainable, opt_vars = state
    for variables, values in (
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (optimizer.variables, opt_vars),
    ):
        if len(variables) != len(values):
            raise ValueError(f"state has {len(values)} arrays for {len(variables)} variables")
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def make_train_step(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, beta: float, gamma: float,
    target_kernel: Any = None,
) -> Callable[[State, dict[str, Any], Any], tuple[State, Any]]:
    """Return ``step(state, batch, alpha) -> (state, figures)``, jit-compiled, state donated.

    ``batch`` = ``{"features": (B, P, F) float32, "mask": (B, P) float32, "target": (B,) int}``; the loss is
    :func:`ucluster_loss` at softness ``alpha`` (traced: changing it does not recompile); ``beta`` and ``gamma``
    are compiled in. ``figures`` are the (4,) ``STEP_FIGURES`` (loss, focal, clustering, correct jets).
    """
    _check_backend()
    import jax
    import jax.numpy as jnp

    kernel = None if target_kernel is None else jnp.asarray(target_kernel)

    def loss_fn(trainable: list[Any], non_trainable: list[Any], batch: dict[str, Any], alpha: Any) -> Any:
        inputs = {"features": batch["features"], "mask": batch["mask"]}
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
        loss, figures = ucluster_loss(outputs, batch["target"], alpha, float(beta), float(gamma), kernel)
        return loss, (non_trainable, figures)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: State, batch: dict[str, Any], alpha: Any) -> tuple[State, Any]:
        trainable, non_trainable, opt_vars = state
        alpha = jnp.asarray(alpha, dtype=jnp.float32)
        (_, (non_trainable, figures)), grads = grad_fn(trainable, non_trainable, batch, alpha)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), figures

    return jax.jit(step, donate_argnums=0)


class JaxLocalEngine(SingleProcessCollectives):
    """One process, one device: the state lives on the default JAX device."""

    name = "jax"

    def __init__(self) -> None:
        _check_backend()

    def setup(self, model, optimizer, gamma: float, kernel: np.ndarray | None) -> None:
        import jax

        self.model, self.optimizer, self.gamma, self.kernel = model, optimizer, gamma, kernel
        self._steps: dict[float, Callable] = {}  # one compiled step per beta (pretraining uses beta = 0)

        def predict(trainable, non_trainable, features, mask):
            out, _ = model.stateless_call(trainable, non_trainable, {"features": features, "mask": mask},
                                          training=False)
            return out["logits"], out["latent"], out["distances"]

        self._predict = jax.jit(predict)
        self.push()
        self._lr_index = next(i for i, v in enumerate(optimizer.variables)
                              if v is optimizer._learning_rate)  # noqa: SLF001

    def step(self, batch: dict, alpha: float, beta: float):
        fn = self._steps.get(beta)
        if fn is None:
            fn = self._steps[beta] = make_train_step(self.model, self.optimizer, beta, self.gamma, self.kernel)
        self.state, figures = fn(self.state, {k: batch[k] for k in STEP_KEYS}, alpha)
        return figures

    def predict(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self._predict(self.state[0], self.state[1], features, mask)
        return tuple(np.asarray(t) for t in out)

    def set_lr(self, lr: float) -> None:
        import jax.numpy as jnp

        opt_vars = list(self.state[2])
        opt_vars[self._lr_index] = jnp.asarray(lr, opt_vars[self._lr_index].dtype)
        self.state = (self.state[0], self.state[1], opt_vars)

    def pull(self) -> None:
        write_state_back(self.model, self.optimizer, self.state)

    def push(self) -> None:
        self.state = init_state(self.model, self.optimizer)
