"""JAX on the local devices of one process (``KERAS_BACKEND=jax``): the GPU engine of the one training loop.

Follows Keras 3's pattern for custom JAX training loops: the model and the optimizer are used statelessly
(``model.stateless_call``, ``optimizer.stateless_apply``), their variables travel as an explicit state tuple
through a jit-compiled pure step whose input state is donated, and :meth:`JaxLocalEngine.pull` copies the state
back into the Keras variables when the loop needs them (checkpoints, saving). jax is imported inside the
functions only, so importing this module never requires jax.

Data parallelism over N local devices (``run.devices``) uses ``jax.sharding``: a 1-D mesh over the devices,
the state replicated on every device, each batch of ``N * train.batch_size`` jets split along axis 0 so that
every device gets its own ``train.batch_size`` slice. The loss is the mean over the whole batch, so XLA's SPMD
partitioner inserts the all-reduce that averages the per-device gradients; one step on N devices is the step on
one device at the same global batch (tests/train/test_jax_devices.py checks the weights agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from ucluster.train.engine import SingleProcessCollectives, ucluster_loss

State = tuple[list[Any], list[Any], list[Any]]  # (trainable, non-trainable, optimizer variables)
STEP_KEYS = ("features", "mask", "target")
OPTIONAL_STEP_KEYS = ("cluster_target",)  # train.cluster_objective self_label: one more compiled step


def step_arrays(batch: dict) -> dict:
    """The arrays of ``batch`` the compiled step takes."""
    return {k: batch[k] for k in (*STEP_KEYS, *OPTIONAL_STEP_KEYS) if k in batch}


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


def local_devices(n: int = 0) -> list:
    """The first ``n`` local JAX devices (0 = all of them); a clear error when fewer exist."""
    import jax

    devices = jax.local_devices()
    if n < 0 or n > len(devices):
        raise ValueError(f"run.devices = {n}, but this process sees {len(devices)} local JAX device(s) "
                         f"({devices[0].platform})")
    return devices[:n] if n else devices


class Placement:
    """Where the step's arrays live: replicated state and a batch split along axis 0 over a 1-D device mesh."""

    def __init__(self, devices: list) -> None:
        import jax
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.devices = list(devices)
        self.n = len(self.devices)
        self.mesh = Mesh(np.array(self.devices), ("batch",))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.split = NamedSharding(self.mesh, PartitionSpec("batch"))
        self._jax = jax

    def replicate(self, tree: Any) -> Any:
        """``tree`` committed to the devices: a copy on each (one device: placed as the step's outputs are, so
        that feeding them back never recompiles)."""
        return self._jax.device_put(tree, self.devices[0] if self.n == 1 else self.replicated)

    def shard(self, tree: Any) -> Any:
        """Split every array of ``tree`` along axis 0 (its length must be a multiple of the device count)."""
        return self._jax.device_put(tree, self.split)


def make_train_step(
    model: keras.Model, optimizer: keras.optimizers.Optimizer, beta: float, gamma: float,
    target_kernel: Any = None, placement: Placement | None = None, balance: float = 0.0,
) -> Callable[[State, dict[str, Any], Any], tuple[State, Any]]:
    """Return ``step(state, batch, alpha) -> (state, figures)``, jit-compiled, state donated.

    ``batch`` = ``{"features": (B, P, F) float32, "mask": (B, P) float32, "target": (B,) int}``, and
    ``"cluster_target": (B,) int`` under ``train.cluster_objective`` self_label (a second trace); the loss is
    :func:`ucluster_loss` at softness ``alpha`` (traced: changing it does not recompile); ``beta`` and ``gamma``
    (and ``balance``) are compiled in. ``figures`` are the (4,) ``STEP_FIGURES`` (loss, focal, clustering,
    correct jets).
    With a ``placement`` the state and figures are replicated and the batch is split over its devices.
    """
    _check_backend()
    import jax
    import jax.numpy as jnp

    kernel = None if target_kernel is None else jnp.asarray(target_kernel)

    def loss_fn(trainable: list[Any], non_trainable: list[Any], batch: dict[str, Any], alpha: Any) -> Any:
        inputs = {"features": batch["features"], "mask": batch["mask"]}
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
        loss, figures = ucluster_loss(outputs, batch["target"], alpha, float(beta), float(gamma), kernel,
                                      float(balance), batch.get("cluster_target"))
        return loss, (non_trainable, figures)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: State, batch: dict[str, Any], alpha: Any) -> tuple[State, Any]:
        trainable, non_trainable, opt_vars = state
        alpha = jnp.asarray(alpha, dtype=jnp.float32)
        (_, (non_trainable, figures)), grads = grad_fn(trainable, non_trainable, batch, alpha)
        trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
        return (trainable, non_trainable, opt_vars), figures

    if placement is None or placement.n == 1:
        return jax.jit(step, donate_argnums=0)
    rep, split = placement.replicated, placement.split
    return jax.jit(step, donate_argnums=0, in_shardings=(rep, split, rep), out_shardings=(rep, rep))


class JaxLocalEngine(SingleProcessCollectives):
    """One process on ``devices`` local JAX devices (0 = all): one device, or data parallelism over several.

    ``replicas`` is the device count: the loop feeds ``replicas * train.batch_size`` jets per step (the paper's
    per-device batch on each device) and scales the lr by it, as it does for Horovod workers. ``rank``/``size``
    stay 0/1: the process is one worker reading one shard; its devices split each batch.
    """

    name = "jax"

    def __init__(self, devices: int = 0) -> None:
        _check_backend()
        self.placement = Placement(local_devices(devices))
        self.replicas = self.placement.n

    def setup(self, model, optimizer, gamma: float, kernel: np.ndarray | None, balance: float = 0.0) -> None:
        import jax

        self.model, self.optimizer, self.gamma, self.kernel = model, optimizer, gamma, kernel
        self.balance = balance
        self._steps: dict[float, Callable] = {}  # one compiled step per beta (pretraining uses beta = 0)

        def predict(trainable, non_trainable, features, mask):
            out, _ = model.stateless_call(trainable, non_trainable, {"features": features, "mask": mask},
                                          training=False)
            return out["logits"], out["latent"], out["distances"]

        if self.replicas == 1:
            self._predict = jax.jit(predict)
        else:
            rep, split = self.placement.replicated, self.placement.split
            self._predict = jax.jit(predict, in_shardings=(rep, rep, split, split), out_shardings=split)
        self.push()
        self._lr_index = next(i for i, v in enumerate(optimizer.variables)
                              if v is optimizer._learning_rate)  # noqa: SLF001

    def put(self, batch: dict) -> dict:
        """The step's arrays of ``batch`` on the devices (split over them). Called in the loader's prefetch
        thread, so the host-to-device copy overlaps the running step instead of sitting in front of it."""
        arrays = step_arrays(batch)
        if self.replicas == 1:
            return self.placement.replicate(arrays)
        n = len(arrays["target"])
        if n % self.replicas:
            raise ValueError(f"a batch of {n} jets does not split over {self.replicas} devices")
        return self.placement.shard(arrays)

    def step(self, batch: dict, alpha: float, beta: float):
        fn = self._steps.get(beta)
        if fn is None:
            fn = self._steps[beta] = make_train_step(self.model, self.optimizer, beta, self.gamma, self.kernel,
                                                     self.placement, self.balance)
        self.state, figures = fn(self.state, step_arrays(batch), alpha)
        return figures

    def predict(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, pad = len(features), -len(features) % self.replicas
        if pad:  # the devices split the batch: pad it to a multiple of their count, drop the padding after
            features = np.concatenate([features, np.zeros((pad, *features.shape[1:]), features.dtype)])
            mask = np.concatenate([mask, np.ones((pad, *mask.shape[1:]), mask.dtype)])
        out = self._predict(self.state[0], self.state[1], features, mask)
        return tuple(np.asarray(t)[:n] for t in out)

    def set_lr(self, lr: float) -> None:
        import jax.numpy as jnp

        opt_vars = list(self.state[2])
        value = jnp.asarray(lr, opt_vars[self._lr_index].dtype)
        opt_vars[self._lr_index] = self.placement.replicate(value)
        self.state = (self.state[0], self.state[1], opt_vars)

    def pull(self) -> None:
        write_state_back(self.model, self.optimizer, self.state)

    def push(self) -> None:
        self.state = self.placement.replicate(init_state(self.model, self.optimizer))
