"""ABCnet backbone (graph attention on particle clouds), classification head and deep k-means clustering layer.

Written with Keras 3 only (``keras`` and ``keras.ops``), so the same model builds, trains and saves under the
TensorFlow and the JAX backends.

Design choices that matter for the rest of the project:

* **No BatchNormalization.** Every normalisation is a LayerNormalization over the channels of one point (or one
  jet in the head). Padding therefore never enters any statistics, and the output of a jet never depends on the
  other jets of the batch: the gradient of N Horovod workers on N slices of a batch equals the gradient of one
  worker on the whole batch (up to float summation order).
* **Padding never leaks.** Padded slots of the input are replaced by zeros (whatever they held), padded points
  are zeroed again after every point-wise layer, k-NN graphs never choose a padded neighbour for a real particle
  while a real one is left, padded "neighbours" of jets with fewer than k particles get zero attention and are
  replaced by the point itself (so they cannot win the max over neighbours), and the jet latent is a max over
  the real particles only.
* **Cheap edges.** The edge projection is linear, so ``W (x_j - x_i) = (W x)_j - (W x)_i``: points are projected
  once, never edges; a GAP block gathers the neighbours' projections (B, P, k, channels) once, plus one attention
  scalar per head. (A variant with a dense (B, heads, P, P) attention matrix and an arg-max gather for
  the locals was measured slower, on TF/CPU and on an H100 under JAX.)
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ucluster.config import ModelConfig
from ucluster.model.losses import self_distillation_loss, swapped_prediction_loss

PACKAGE = "ucluster"
# Attention logit of excluded neighbours: exp(-1e9 - max) is exactly 0 in float32, and unlike -inf it cannot
# produce NaN (inf - inf) in a row that had no valid neighbour at all (only possible for padded points).
_EXCLUDED_LOGIT = -1.0e9
# Distance given to padded candidates so that they are chosen only after every real particle.
_FAR = 1.0e30


def _real(point_mask: Any, dtype: str) -> Any:
    """1.0 for real particles, 0.0 for padding (the mask is thresholded, so soft masks cannot scale features)."""
    return ops.cast(point_mask > 0.5, dtype)


def _batch_gather(x: Any, idx: Any) -> Any:
    """``x[b, idx[b, i, j]]`` for x (B, P, C) and idx (B, P, k) -> (B, P, k, C), via one flat ``take``."""
    batch, n_points = ops.shape(x)[0], ops.shape(x)[1]
    channels = x.shape[-1]
    k = idx.shape[-1]
    offsets = ops.reshape(ops.arange(batch, dtype="int32") * n_points, (-1, 1, 1))
    flat_idx = ops.reshape(idx + offsets, (-1,))
    flat_x = ops.reshape(x, (-1, channels))
    return ops.reshape(ops.take(flat_x, flat_idx, axis=0), (batch, n_points, k, channels))


@keras.saving.register_keras_serializable(package=PACKAGE)
class ZeroPadding(keras.layers.Layer):
    """Replace padded slots by zeros with ``where`` (not a product), so even NaN/inf garbage there cannot leak."""

    def call(self, inputs: list[Any]) -> Any:
        x, point_mask = inputs
        return ops.where(ops.expand_dims(point_mask > 0.5, -1), x, ops.zeros_like(x))


@keras.saving.register_keras_serializable(package=PACKAGE)
class KNNGraph(keras.layers.Layer):
    """k nearest neighbours of every point (itself included) among the real particles of its jet.

    Inputs ``[x (B, P, C), mask (B, P)]``. With ``n_coords`` set, distances use the first ``n_coords`` channels
    (the (Δη, Δφ) graph, computed from exact differences); otherwise all channels (the dynamic graph in feature
    space, from dot products, with the gradient stopped since only the integer neighbour indices are used).

    Returns ``[idx (B, P, k) int32, valid (B, P, k) float32]``. The point itself is always the first neighbour.
    Padded candidates come after all real ones; when a jet has fewer than k real particles, the padded slots get
    ``valid = 0`` and their index is replaced by the point's own index, so that a gather there repeats the point
    itself (harmless for a max) instead of reading a padded slot. ``k`` is capped at P.
    """

    def __init__(self, k: int, n_coords: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.k = int(k)
        self.n_coords = None if n_coords is None else int(n_coords)

    def call(self, inputs: list[Any]) -> list[Any]:
        x, point_mask = inputs
        x = ops.stop_gradient(x)
        n_points = ops.shape(x)[1]
        k = min(self.k, x.shape[1]) if x.shape[1] is not None else self.k
        if self.n_coords is not None:
            # Exact differences, one coordinate at a time: the same values as summing a (B, P, P, n_coords)
            # tensor over its last axis, without building it (3x faster on CPU, measured).
            dist = None
            for i in range(self.n_coords):
                coord = x[..., i]
                sq = ops.square(ops.expand_dims(coord, 2) - ops.expand_dims(coord, 1))
                dist = sq if dist is None else dist + sq
        else:
            sq = ops.sum(ops.square(x), axis=-1)
            dist = ops.expand_dims(sq, 2) + ops.expand_dims(sq, 1) - 2.0 * ops.matmul(x, ops.transpose(x, (0, 2, 1)))
            dist = ops.maximum(dist, 0.0)
        real = point_mask > 0.5
        dist = ops.where(ops.expand_dims(real, 1), dist, ops.full_like(dist, _FAR))
        eye = ops.expand_dims(ops.eye(n_points, dtype="bool"), 0)
        dist = ops.where(eye, ops.full_like(dist, -1.0), dist)  # self first, whatever rounding does
        _, idx = ops.top_k(-dist, k=k, sorted=True)
        idx = ops.cast(idx, "int32")
        valid = ops.squeeze(_batch_gather(ops.expand_dims(ops.cast(real, x.dtype), -1), idx), -1)
        self_idx = ops.broadcast_to(ops.reshape(ops.arange(n_points, dtype="int32"), (1, -1, 1)), ops.shape(idx))
        idx = ops.where(valid > 0.5, idx, self_idx)
        return [idx, valid]

    def compute_output_shape(self, input_shape: list[tuple]) -> list[tuple]:
        b, p = input_shape[0][0], input_shape[0][1]
        k = min(self.k, p) if p is not None else self.k
        return [(b, p, k), (b, p, k)]

    def compute_output_spec(self, inputs: list[Any]) -> list[Any]:
        s0, s1 = self.compute_output_shape([inputs[0].shape, inputs[1].shape])
        return [keras.KerasTensor(s0, dtype="int32"), keras.KerasTensor(s1, dtype=self.compute_dtype)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "n_coords": self.n_coords}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GAPLayer(keras.layers.Layer):
    """Graph attention pooling (GAPNet / ABCnet) with ``heads`` heads of ``channels`` channels each.

    Inputs ``[x (B, P, F), idx (B, P, k), valid (B, P, k), mask (B, P)]``. For each head h, with the linear edge
    projection u = W_h x (no bias, so that ``W_h (x_j - x_i) = u_j - u_i``):

    * logits ``l_ij = leaky_relu(s_h·x_i + n_h·(u_j - u_i))`` (self term + neighbour term), excluded neighbours
      set to -1e9 before the softmax over the k neighbours, then optional dropout on the coefficients;
    * attention output ``Σ_j a_ij (u_j - u_i) + b_h``, then ReLU; heads are concatenated -> (B, P, heads·channels);
    * locals ``max_j (u_j - u_i)`` over the valid neighbours (the point itself included), heads concatenated
      -> (B, P, heads·channels), as in GAPNet's multi-head concat (kept per head: cheap and more informative than
      a max across heads).

    The original's two stacked linear 1×1 convolutions for the self term (point projection, then a 1-channel
    projection) compose to one linear map, so one (F, heads) kernel is used.
    """

    def __init__(
        self, channels: int, heads: int = 1, attention_dropout: float = 0.0, negative_slope: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.heads = int(heads)
        self.attention_dropout = float(attention_dropout)
        self.negative_slope = float(negative_slope)
        self.dropout = keras.layers.Dropout(self.attention_dropout) if self.attention_dropout > 0 else None

    def build(self, input_shape: list[tuple]) -> None:
        n_in = input_shape[0][-1]
        hc = self.heads * self.channels
        self.edge_kernel = self.add_weight(name="edge_kernel", shape=(n_in, hc), initializer="glorot_uniform")
        self.self_attention = self.add_weight(
            name="self_attention", shape=(n_in, self.heads), initializer="glorot_uniform"
        )
        self.neighbour_attention = self.add_weight(
            name="neighbour_attention", shape=(self.channels, self.heads), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(hc,), initializer="zeros")
        if self.dropout is not None:
            self.dropout.build(None)

    def call(self, inputs: list[Any], training: bool | None = None) -> list[Any]:
        x, idx, valid, point_mask = inputs
        h, c = self.heads, self.channels
        hc = h * c
        batch, n_points = ops.shape(x)[0], ops.shape(x)[1]
        k = idx.shape[-1]
        u = ops.matmul(x, self.edge_kernel)  # (B, P, H*C): edge projections are differences of these
        u_heads = ops.reshape(u, (batch, n_points, h, c))
        v = ops.einsum("bphc,ch->bph", u_heads, self.neighbour_attention)  # neighbour term n_h·u_h per point
        s = ops.matmul(x, self.self_attention)  # self term, (B, P, H)

        logits = ops.expand_dims(s - v, 2) + _batch_gather(v, idx)  # s_i + n·(u_j - u_i), (B, P, k, H)
        logits = ops.leaky_relu(logits, negative_slope=self.negative_slope)
        logits = ops.where(ops.expand_dims(valid > 0.5, -1), logits, ops.full_like(logits, _EXCLUDED_LOGIT))
        coef = ops.softmax(logits, axis=2)
        if self.dropout is not None:
            coef = self.dropout(coef, training=training)

        # One gather of the neighbours' projections (B, P, k, H*C), shared by the attention sum and the max.
        g_u = _batch_gather(u, idx)
        weighted = ops.sum(ops.reshape(g_u, (batch, n_points, k, h, c)) * ops.expand_dims(coef, -1), axis=2)
        # Σ_j a_ij (u_j - u_i) = Σ_j a_ij u_j - (Σ_j a_ij) u_i; the sum is 1 unless dropout removed some.
        attn = weighted - ops.expand_dims(ops.sum(coef, axis=2), -1) * u_heads
        attn = ops.relu(ops.reshape(attn, (batch, n_points, hc)) + self.bias)
        # locals = max_j u_j - u_i; invalid slots hold the point itself (see KNNGraph), so they never win.
        local = ops.max(g_u, axis=2) - u

        m = ops.expand_dims(_real(point_mask, attn.dtype), -1)
        return [attn * m, local * m]

    def compute_output_shape(self, input_shape: list[tuple]) -> list[tuple]:
        b, p = input_shape[0][0], input_shape[0][1]
        shape = (b, p, self.heads * self.channels)
        return [shape, shape]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(), "channels": self.channels, "heads": self.heads,
            "attention_dropout": self.attention_dropout, "negative_slope": self.negative_slope,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class PointwiseDense(keras.layers.Layer):
    """1×1 "convolution": Dense -> LayerNormalization (per point) -> ReLU, then padded points set to zero."""

    def __init__(self, units: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units = int(units)
        self.dense = keras.layers.Dense(self.units, use_bias=False, name="dense")
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, name="norm")

    def build(self, input_shape: list[tuple]) -> None:
        self.dense.build(input_shape[0])
        self.norm.build((*input_shape[0][:-1], self.units))

    def call(self, inputs: list[Any]) -> Any:
        x, point_mask = inputs
        y = ops.relu(self.norm(self.dense(x)))
        return y * ops.expand_dims(_real(point_mask, y.dtype), -1)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (*input_shape[0][:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMaxPool(keras.layers.Layer):
    """Max over the real particles of each jet: (B, P, C), (B, P) -> (B, C)."""

    def call(self, inputs: list[Any]) -> Any:
        x, point_mask = inputs
        real = ops.expand_dims(point_mask > 0.5, -1)
        return ops.max(ops.where(real, x, ops.full_like(x, -_FAR)), axis=1)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0], input_shape[0][-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMeanPool(keras.layers.Layer):
    """Mean over the real particles of each jet: (B, P, C), (B, P) -> (B, C). Beside the max it keeps what is
    additive over particles (the jet mass is a sum over pairs), which a max alone discards."""

    def call(self, inputs: list[Any]) -> Any:
        x, point_mask = inputs
        real = ops.expand_dims(_real(point_mask, x.dtype), -1)
        return ops.sum(x * real, axis=1) / ops.maximum(ops.sum(real, axis=1), 1.0)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0], input_shape[0][-1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class InputScaling(keras.layers.Layer):
    """``(x - mean) / scale`` per feature on real particles (padding stays exactly zero).

    ``mean`` and ``scale`` are non-trainable weights, set once from the training split before training
    (:func:`set_input_scaling`); being weights, they travel in checkpoints and in the saved model, so training,
    assignment and export standardise with the same numbers. Identity until set.
    """

    def build(self, input_shape: list[tuple]) -> None:
        n_f = input_shape[0][-1]
        self.mean = self.add_weight(name="mean", shape=(n_f,), initializer="zeros", trainable=False)
        self.scale = self.add_weight(name="scale", shape=(n_f,), initializer="ones", trainable=False)

    def call(self, inputs: list[Any]) -> Any:
        x, point_mask = inputs
        y = (x - ops.cast(self.mean, x.dtype)) / ops.cast(self.scale, x.dtype)
        return y * ops.expand_dims(_real(point_mask, x.dtype), -1)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]


@keras.saving.register_keras_serializable(package=PACKAGE)
class ClusteringLayer(keras.layers.Layer):
    """Deep k-means centroids μ (n_clusters × latent) -> ‖z − μ_k‖², (B, K).

    The trainable weight "centroids" holds μ / ``step_scale``: Adam moves every weight by about the lr per step
    whatever its gradient, so a scale s < 1 makes the centroids move s times slower than the network (a
    per-parameter learning rate that every engine and optimizer honours). Read and write μ through
    :func:`get_centroids` / :func:`set_centroids`.
    """

    def __init__(self, n_clusters: int, step_scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_clusters = int(n_clusters)
        self.step_scale = float(step_scale)

    def build(self, input_shape: tuple) -> None:
        self.centroids = self.add_weight(
            name="centroids", shape=(self.n_clusters, input_shape[-1]),
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )

    def call(self, z: Any) -> Any:
        mu = ops.cast(self.centroids, z.dtype) * self.step_scale  # exact for the default scale 1
        diff = ops.expand_dims(z, 1) - ops.expand_dims(mu, 0)  # (B, K, D)
        return ops.sum(ops.square(diff), axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], self.n_clusters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_clusters": self.n_clusters, "step_scale": self.step_scale}


@keras.saving.register_keras_serializable(package=PACKAGE)
class JetViews(keras.layers.Layer):
    """Training: two augmented views of every jet stacked along the batch, ``(2B, P, F)`` and ``(2B, P)``, view 1
    first; inference: the jets unchanged, so a trained model predicts on the jets themselves.

    A view rotates the particles' (Δη, Δφ) about the jet axis by a uniform angle (the physics is symmetric under
    it), shifts them by a Gaussian of std ``shift`` (an uncertain axis) and drops each particle but the leading
    one with probability ``drop`` (soft particles that a detector may miss); the other features are kept.
    """

    def __init__(self, shift: float = 0.05, drop: float = 0.1, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shift, self.drop, self.seed = float(shift), float(drop), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _view(self, x: Any, mask: Any) -> tuple[Any, Any]:
        batch, n_points = ops.shape(x)[0], ops.shape(x)[1]
        theta = keras.random.uniform((batch, 1), 0.0, 2.0 * np.pi, seed=self.seed_generator)
        shift = keras.random.normal((batch, 1, 2), stddev=self.shift, seed=self.seed_generator)
        cos, sin = ops.cos(theta), ops.sin(theta)
        deta, dphi = x[..., 0], x[..., 1]
        coords = ops.stack([cos * deta - sin * dphi, sin * deta + cos * dphi], axis=-1) + shift
        keep = keras.random.uniform((batch, n_points), seed=self.seed_generator) >= self.drop
        leading = ops.expand_dims(ops.arange(n_points) == 0, 0)
        mask = _real(mask, x.dtype) * ops.cast(ops.logical_or(keep, leading), x.dtype)
        x = ops.concatenate([coords, x[..., 2:]], axis=-1) * ops.expand_dims(mask, -1)
        return x, mask

    def call(self, inputs: list[Any], training: bool | None = None) -> list[Any]:
        x, mask = inputs
        if not training:
            return [x, mask]
        (x1, m1), (x2, m2) = self._view(x, mask), self._view(x, mask)
        return [ops.concatenate([x1, x2], axis=0), ops.concatenate([m1, m2], axis=0)]

    def compute_output_shape(self, input_shape: list[tuple]) -> list[tuple]:
        return [(None, *input_shape[0][1:]), (None, *input_shape[1][1:])]

    def compute_output_spec(self, inputs: list[Any], training: bool | None = None) -> list[Any]:
        return [keras.KerasTensor((None, *t.shape[1:]), dtype=t.dtype) for t in inputs]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shift": self.shift, "drop": self.drop, "seed": self.seed}


def _cosine_scores(z: Any, kernel: Any) -> Any:
    """Scores (B, K) of unit vectors ``z`` on the kernel's K columns taken as unit directions (prototypes)."""
    return ops.matmul(z, kernel / ops.maximum(ops.norm(kernel, axis=0, keepdims=True), 1e-12))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwappedPrediction(keras.layers.Layer):
    """The self-supervised term per jet, ``weight`` x :func:`swapped_prediction_loss` of the two stacked views'
    cosine scores on ``prototypes`` learned unit vectors, (B,); zeros (B,) at inference, where there is one view.
    """

    def __init__(self, prototypes: int, weight: float, temperature: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prototypes, self.weight, self.temperature = int(prototypes), float(weight), float(temperature)

    def build(self, input_shape: tuple) -> None:
        self.kernel = self.add_weight(name="prototypes", shape=(input_shape[-1], self.prototypes),
                                      initializer="glorot_uniform", trainable=True)

    def call(self, z: Any, training: bool | None = None) -> Any:
        if not training:
            return ops.zeros((ops.shape(z)[0],), z.dtype)
        z = z / ops.maximum(ops.norm(z, axis=-1, keepdims=True), 1e-12)
        scores_a, scores_b = ops.split(_cosine_scores(z, self.kernel), 2, axis=0)
        return self.weight * swapped_prediction_loss(scores_a, scores_b, self.temperature)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0],)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "prototypes": self.prototypes, "weight": self.weight,
                "temperature": self.temperature}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PrototypeScores(keras.layers.Layer):
    """Cosine scores (B, K) of unit vectors on ``prototypes`` learned directions (the kernel's columns,
    normalised in the call)."""

    def __init__(self, prototypes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prototypes = int(prototypes)

    def build(self, input_shape: tuple) -> None:
        self.kernel = self.add_weight(name="prototypes", shape=(input_shape[-1], self.prototypes),
                                      initializer="glorot_uniform", trainable=True)

    def call(self, z: Any) -> Any:
        return _cosine_scores(z, self.kernel)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], self.prototypes)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "prototypes": self.prototypes}


class _Untracked:
    """Holds a value out of Keras' attribute tracking: the (student, teacher) variable pairs must not become the
    distillation layer's own variables as well, and the engine's cross-worker mean is no layer state."""

    def __init__(self, value: Any) -> None:
        self.value = value


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelfDistillation(keras.layers.Layer):
    """The DINO-style self-supervised term per jet, (B,); zeros (B,) at inference.

    Inputs: the student's and the teacher's prototype scores of the two stacked views, ``(2B, K)`` each. Each
    view's student softmax(scores / ``temperature``) predicts the teacher's sharpened, centred softmax of the
    *other* view, softmax((scores - centre) / ``teacher_temperature``), without gradient. Centring (a running
    mean of the teacher scores) stops one prototype from taking every jet; sharpening stops the uniform code.
    In training the layer then moves the centre, and the teacher's weights towards the student's (an
    exponential moving average with ``teacher_momentum``): the teacher is the slowly moving student that DINO
    and jBOT distil from. :func:`bind_teacher` gives the layer the variable pairs once the model is built, and
    :func:`set_worker_mean` an engine's mean across workers, so that every worker moves the centre by the mean of
    the whole global batch (the teachers follow the same averaged student on every worker anyway).
    """

    def __init__(self, weight: float, temperature: float = 0.1, teacher_temperature: float = 0.04,
                 teacher_momentum: float = 0.996, center_momentum: float = 0.9, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight, self.temperature = float(weight), float(temperature)
        self.teacher_temperature, self.teacher_momentum = float(teacher_temperature), float(teacher_momentum)
        self.center_momentum = float(center_momentum)
        self._teacher = _Untracked([])
        self._worker_mean = _Untracked(None)

    def build(self, input_shape: list[tuple]) -> None:
        self.center = self.add_weight(name="center", shape=(input_shape[1][-1],), initializer="zeros",
                                      trainable=False)

    def bind(self, pairs: list[tuple[Any, Any]]) -> None:
        self._teacher = _Untracked(list(pairs))

    def set_worker_mean(self, mean: Any) -> None:
        self._worker_mean = _Untracked(mean)

    def call(self, inputs: list[Any], training: bool | None = None) -> Any:
        student, teacher = inputs
        if not training:
            return ops.zeros((ops.shape(student)[0],), student.dtype)
        if not self._teacher.value:
            raise RuntimeError(f"{self.name}: no teacher to distil from; a loaded model must go through "
                               "ucluster.model.bind_teacher before it trains")
        teacher = ops.stop_gradient(teacher)
        loss = self_distillation_loss(student, teacher, self.center, self.temperature, self.teacher_temperature)
        batch_mean = ops.mean(teacher, axis=0)
        if self._worker_mean.value is not None:
            batch_mean = self._worker_mean.value(batch_mean)
        m = self.center_momentum
        self.center.assign(m * self.center + (1.0 - m) * batch_mean)
        m = self.teacher_momentum
        for s, t in self._teacher.value:
            t.assign(m * t.value + (1.0 - m) * ops.stop_gradient(ops.cast(s.value, t.dtype)))
        return self.weight * loss

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return (input_shape[0][0],)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight, "temperature": self.temperature,
                "teacher_temperature": self.teacher_temperature, "teacher_momentum": self.teacher_momentum,
                "center_momentum": self.center_momentum}


TEACHER = "teacher_"


def bind_teacher(model: keras.Model) -> None:
    """Freeze the teacher copy of a self-distillation model, start it from the student's weights and hand the
    (student, teacher) variable pairs to its :class:`SelfDistillation` layer; a no-op for other models. Called by
    :func:`build_model`; a loaded model has no pairs, which only training needs (checkpoints restore the teacher
    into a model built here)."""
    layers = {layer.name: layer for layer in model.layers}
    distil = layers.get("ssl_self_distillation")
    if distil is None:
        return
    pairs = []
    for name, teacher in layers.items():
        if not name.startswith(TEACHER):
            continue
        teacher.trainable = False
        student = layers[name[len(TEACHER):]]
        for s, t in zip(student.weights, teacher.weights, strict=True):
            t.assign(s.value)
            pairs.append((s, t))
    distil.bind(pairs)


def set_worker_mean(model: keras.Model, mean: Any) -> None:
    """Hand a self-distillation model the engine's mean across workers of one tensor, traceable inside the step
    (``None``: one worker); a no-op for other models."""
    for layer in model.layers:
        if isinstance(layer, SelfDistillation):
            layer.set_worker_mean(mean)


def _encoder(cfg: ModelConfig, x0: Any, mask: Any, idx1: Any, valid1: Any, prefix: str = "") -> Any:
    """The ABCnet graph network from the (scaled) particles to the jet latent, before normalisation. ``prefix``
    names a second copy (the self-distillation teacher) whose layers pair with the first's by name."""
    drop = 0.0 if prefix == TEACHER else cfg.attention_dropout  # the teacher's targets are not noised (DINO's)
    attn1, local1 = GAPLayer(cfg.gap1_channels, 1, drop, name=f"{prefix}gap1")([x0, idx1, valid1, mask])

    h = keras.layers.Concatenate(name=f"{prefix}block1_concat")([x0, attn1])
    stage1 = []
    for i, units in enumerate(cfg.point_channels):
        h = PointwiseDense(units, name=f"{prefix}point1_{i}")([h, mask])
        stage1.append(h)

    idx2, valid2 = KNNGraph(cfg.k, name=f"{prefix}knn_features")([h, mask])
    attn2, local2 = GAPLayer(cfg.gap2_channels, cfg.gap2_heads, drop, name=f"{prefix}gap2")(
        [h, idx2, valid2, mask]
    )
    h = attn2
    stage2 = []
    for i, units in enumerate(cfg.point_channels):
        h = PointwiseDense(units, name=f"{prefix}point2_{i}")([h, mask])
        stage2.append(h)

    all_points = keras.layers.Concatenate(name=f"{prefix}all_points")(
        [attn1, local1, *stage1, attn2, local2, *stage2])
    per_point = PointwiseDense(cfg.latent_dim, name=f"{prefix}latent_points")([all_points, mask])
    if cfg.pooling == "max":
        return MaskedMaxPool(name=f"{prefix}latent")([per_point, mask])
    # "max_mean": both poolings, projected back to the latent size
    pooled = keras.layers.Concatenate(name=f"{prefix}pooled")(
        [MaskedMaxPool(name=f"{prefix}max_pool")([per_point, mask]),
         MaskedMeanPool(name=f"{prefix}mean_pool")([per_point, mask])])
    return keras.layers.Dense(cfg.latent_dim, activation="relu", name=f"{prefix}latent")(pooled)


def _prototype_scores(cfg: ModelConfig, latent: Any, prefix: str = "") -> Any:
    """Self-distillation head: a projection of the latent, unit-normalised, and its cosine scores on
    ``cfg.ssl_prototypes`` learned unit vectors (weight-normalised, as DINO's last layer), (B, K)."""
    z = keras.layers.Dense(cfg.latent_dim, activation="gelu", name=f"{prefix}ssl_projection_0")(latent)
    z = keras.layers.Dense(64, name=f"{prefix}ssl_projection_1")(z)
    z = keras.layers.UnitNormalization(axis=-1, name=f"{prefix}ssl_unit")(z)
    return PrototypeScores(cfg.ssl_prototypes, name=f"{prefix}ssl_prototypes")(z)


def build_model(cfg: ModelConfig, n_particles: int | None, n_features: int, n_classes: int) -> keras.Model:
    """ABCnet + classification head + clustering layer as a functional model.

    Inputs ``{"features": (B, P, F), "mask": (B, P)}`` (features[..., 0:2] = Δη, Δφ; real particles first);
    outputs ``{"logits": (B, n_classes), "latent": (B, latent_dim), "distances": (B, n_clusters)}``.
    ``n_particles`` may be None (any P; k is then not capped at P, so P must be >= k).

    Second point-wise stage: ``cfg.point_channels`` is used for both point-wise stages (after GAP block 1 and
    after GAP block 2), since ModelConfig has one list. The original's "global jet features" branch is absent:
    the inputs carry no per-jet features.
    """
    if n_features < 2:
        raise ValueError("n_features must be >= 2: features[..., 0:2] are the (Δη, Δφ) graph coordinates")
    features_in = keras.Input(shape=(n_particles, n_features), name="features")
    mask_in = keras.Input(shape=(n_particles,), name="mask")

    x0 = ZeroPadding(name="zero_padding")([features_in, mask_in])
    mask = mask_in
    ssl = cfg.ssl_weight > 0
    if ssl:  # training sees two augmented views of each jet, stacked along the batch; inference the jet itself
        x0, mask = JetViews(cfg.ssl_shift, cfg.ssl_drop, name="jet_views")([x0, mask])
    idx1, valid1 = KNNGraph(cfg.k, n_coords=2, name="knn_coords")([x0, mask])  # raw (Δη, Δφ) distances
    if cfg.standardize:
        x0 = InputScaling(name="input_scaling")([x0, mask])
    latent = _encoder(cfg, x0, mask, idx1, valid1)

    y = latent
    for i, units in enumerate(cfg.head_units):
        y = keras.layers.Dense(units, use_bias=False, name=f"head_dense_{i}")(y)
        y = keras.layers.LayerNormalization(epsilon=1e-5, name=f"head_norm_{i}")(y)
        y = keras.layers.Activation("relu", name=f"head_relu_{i}")(y)
        if cfg.dropout > 0:
            y = keras.layers.Dropout(cfg.dropout, name=f"head_dropout_{i}")(y)
    logits = keras.layers.Dense(n_classes, name="logits")(y)
    outputs = {"logits": logits}
    if ssl and cfg.ssl_method == "dino":  # a teacher copy of the encoder and head, moved by the student's EMA
        teacher = _prototype_scores(cfg, _encoder(cfg, x0, mask, idx1, valid1, TEACHER), TEACHER)
        outputs["ssl_loss"] = SelfDistillation(
            cfg.ssl_weight, cfg.ssl_temperature, cfg.ssl_teacher_temperature, cfg.ssl_teacher_momentum,
            cfg.ssl_center_momentum, name="ssl_self_distillation")([_prototype_scores(cfg, latent), teacher])
    elif ssl:  # projection head of the self-supervised term (SwAV's), on the latent before normalisation
        z = keras.layers.Dense(cfg.latent_dim, activation="relu", name="ssl_projection_0")(latent)
        z = keras.layers.Dense(64, name="ssl_projection_1")(z)
        outputs["ssl_loss"] = SwappedPrediction(cfg.ssl_prototypes, cfg.ssl_weight, cfg.ssl_temperature,
                                                name="ssl_swapped_prediction")(z)
    if cfg.latent_norm == "l2":
        # Cluster on the unit sphere: the deep k-means loss can then no longer shrink every distance by
        # shrinking the latent's scale (measured: without it the latent collapses and clusters empty out).
        latent = keras.layers.UnitNormalization(axis=-1, name="latent_unit")(latent)
    distances = ClusteringLayer(cfg.n_clusters, cfg.centroid_step_scale, name="clustering")(latent)

    model = keras.Model(
        inputs={"features": features_in, "mask": mask_in},
        outputs={**outputs, "latent": latent, "distances": distances},
        name="ucluster_abcnet",
    )
    bind_teacher(model)
    return model


def _clustering_layer(model: keras.Model) -> ClusteringLayer:
    layer = model.get_layer("clustering")
    if not isinstance(layer, ClusteringLayer):
        raise TypeError(f"layer 'clustering' is a {type(layer).__name__}, not a ClusteringLayer")
    return layer


def set_centroids(model: keras.Model, centroids: np.ndarray) -> None:
    """Overwrite the centroids (e.g. with KMeans centres after pretraining); shape must be (n_clusters, latent)."""
    layer = _clustering_layer(model)
    centroids = np.asarray(centroids, dtype=layer.centroids.dtype)
    if tuple(centroids.shape) != tuple(layer.centroids.shape):
        raise ValueError(f"centroids of shape {centroids.shape}, expected {tuple(layer.centroids.shape)}")
    layer.centroids.assign(centroids / np.asarray(layer.step_scale, centroids.dtype))


def has_input_scaling(model: keras.Model) -> bool:
    return any(layer.name == "input_scaling" for layer in model.layers)


def set_input_scaling(model: keras.Model, mean: np.ndarray, scale: np.ndarray) -> None:
    """Store the per-feature input statistics (shape (n_features,) each; scale > 0) in the model."""
    layer = model.get_layer("input_scaling")
    mean, scale = (np.asarray(a, dtype=layer.mean.dtype) for a in (mean, scale))
    if mean.shape != tuple(layer.mean.shape) or scale.shape != tuple(layer.scale.shape):
        raise ValueError(f"input statistics of shapes {mean.shape}/{scale.shape}, expected {tuple(layer.mean.shape)}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise ValueError("input statistics must be finite with a positive scale")
    layer.mean.assign(mean)
    layer.scale.assign(scale)


def get_input_scaling(model: keras.Model) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, scale) of the input standardisation, or None for a model without it."""
    if not has_input_scaling(model):
        return None
    layer = model.get_layer("input_scaling")
    return np.array(ops.convert_to_numpy(layer.mean)), np.array(ops.convert_to_numpy(layer.scale))


def get_centroids(model: keras.Model) -> np.ndarray:
    """Current centroids as a numpy array (n_clusters, latent)."""
    layer = _clustering_layer(model)
    values = np.array(ops.convert_to_numpy(layer.centroids))
    return values * np.asarray(layer.step_scale, values.dtype)


def latent_model(model: keras.Model) -> keras.Model:
    """A model sharing the weights that returns only the clustering latent (for the KMeans initialisation pass):
    the unit-normalised one when ``latent_norm`` is "l2"."""
    name = "latent_unit" if any(layer.name == "latent_unit" for layer in model.layers) else "latent"
    return keras.Model(inputs=model.input, outputs=model.get_layer(name).output, name="ucluster_latent")
