"""A jit-compiled JAX training step for the GPU benchmark (needs ``KERAS_BACKEND=jax``).

Follows Keras 3's pattern for custom JAX training loops: the model and the optimizer are used statelessly
(``model.stateless_call``, ``optimizer.stateless_apply``), the state is an explicit tuple of arrays passed
through a pure function, and ``write_state_back`` copies it into the Keras variables at the end (before saving
or evaluating with the Keras API). jax is imported inside the functions only, so that importing this module
never requires jax.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras

from ucluster.model.losses import deep_kmeans_loss, focal_loss

State = tuple[list[Any], list[Any], list[Any]]  # (trainable, non-trainable, optimizer variables)


def _check_backend() -> None:
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(f"the JAX train step needs KERAS_BACKEND=jax, the Keras backend is {backend}")


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
) -> Callable[[State, dict[str, Any], Any], tuple[State, dict[str, Any]]]:
    """Return ``step(state, batch, alpha) -> (state, metrics)``, jit-compiled, state donated.

    ``batch`` = ``{"features": (B, P, F) float32, "mask": (B, P) float32, "target": (B,) int}``; loss =
    mean focal loss (γ = ``gamma``) + ``beta`` · mean deep k-means loss at softness ``alpha`` (a traced scalar:
    changing it does not recompile; ``beta`` and ``gamma`` are compiled in, so the pretraining phase uses its
    own step with ``beta=0``); ``target_kernel``: the ordinal mass-bin targets of :func:`focal_loss`.
    Metrics: loss, focal, kmeans, accuracy (on the classification target).
    """
    _check_backend()
    import jax
    import jax.numpy as jnp

    beta = float(beta)
    gamma = float(gamma)
    kernel = None if target_kernel is None else jnp.asarray(target_kernel)

    def loss_fn(trainable: list[Any], non_trainable: list[Any], batch: dict[str, Any], alpha: Any) -> Any:
        inputs = {"features": batch["features"], "mask": batch["mask"]}
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
        focal = jnp.mean(focal_loss(batch["target"], outputs["logits"], gamma, kernel))
        kmeans = jnp.mean(deep_kmeans_loss(outputs["distances"], alpha))
        loss = focal + beta * kmeans
        correct = jnp.argmax(outputs["logits"], axis=-1) == batch["target"].astype(jnp.int32)
        return loss, (non_trainable, {"focal": focal, "kmeans": kmeans, "accuracy": jnp.mean(correct)})

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: State, batch: dict[str, Any], alpha: Any) -> tuple[State, dict[str, Any]]:
        trainable, non_trainable, opt_vars = state
        alpha = jnp.asarray(alpha, dtype=jnp.float32)
        (loss, (non_trainable, metrics)), grads = grad_fn(trainable, non_trainable, batch, alpha)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), {"loss": loss, **metrics}

    return jax.jit(step, donate_argnums=0)
