"""Real Horovod processes: 2-worker updates equal the 1-worker update on the concatenated batch."""

from __future__ import annotations

import sys

import cloudpickle
import numpy as np
import pytest

from ucluster.data.loader import JetStream
from ucluster.distributed import HorovodRunner, LaunchError

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module


def _steps_worker(config: dict, batches: list[dict], lr: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Build the model, perturb non-root weights (the broadcast must undo it), train on this rank's part."""
    import keras

    from ucluster.config import config_from_dict
    from ucluster.distributed import init_horovod
    from ucluster.model import build_model
    from ucluster.train.engines.horovod_tf import StepFunctions
    from ucluster.train.loop import n_classes

    hvd = init_horovod()
    cfg = config_from_dict(config)
    keras.utils.set_random_seed(123)
    f = batches[0]["features"]
    model = build_model(cfg.model, f.shape[1], f.shape[2], n_classes(cfg))
    if hvd.rank() != 0:
        for v in model.trainable_variables:
            v.assign(v.numpy() + 0.5)
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(model.trainable_variables)
    hvd.broadcast_variables([v.value for v in model.trainable_variables], root_rank=0)
    hvd.broadcast_variables([v.value for v in optimizer.variables], root_rank=0)
    initial = [v.numpy() for v in model.trainable_variables]
    fns = StepFunctions(model, optimizer, cfg.train.gamma, hvd if hvd.size() > 1 else None)
    size, rank = hvd.size(), hvd.rank()
    for batch in batches:
        n = len(batch["target"])
        part = slice(rank * n // size, (rank + 1) * n // size)
        fns.train({k: v[part] for k, v in batch.items()}, alpha=2.0, beta=10.0)
    return initial, [v.numpy() for v in model.trainable_variables]


def test_two_workers_match_one_worker_on_the_concatenated_batch(tiny_config):
    from horovod.runner import run as horovod_run

    stream = JetStream(tiny_config, "train")
    batches = list(stream.batches(32, 3, epoch=0, seed=5))
    kwargs = {"config": tiny_config.to_dict(), "batches": batches, "lr": 1e-3}
    two = horovod_run(_steps_worker, kwargs=kwargs, num_proc=2, hosts="localhost:2", use_gloo=True, verbose=0)
    one = horovod_run(_steps_worker, kwargs=kwargs, num_proc=1, hosts="localhost:1", use_gloo=True, verbose=0)
    assert len(two) == 2 and len(one) == 1
    (init0, final0), (init1, final1), (init_single, final_single) = two[0], two[1], one[0]
    moved, diff_sum, update_sum = 0, 0.0, 0.0
    # Adam moves each weight by at most ~lr per step whatever the gradient's size, so float round-off in a
    # near-zero gradient can show as a small fraction of one step: bound the difference by that scale.
    step_scale = kwargs["lr"] * len(batches)
    for i, (a, b, single) in enumerate(zip(final0, final1, final_single, strict=True)):
        np.testing.assert_array_equal(init0[i], init1[i])  # the broadcast undid rank 1's perturbation
        np.testing.assert_array_equal(init0[i], init_single[i])
        np.testing.assert_array_equal(a, b)  # ranks hold identical weights after the steps
        np.testing.assert_allclose(a, single, rtol=0, atol=0.02 * step_scale)
        diff_sum += float(np.abs(a - single).sum())
        update_sum += float(np.abs(single - init0[i]).sum())
        moved += int(not np.allclose(single, init0[i]))
    assert diff_sum < 1e-3 * update_sum  # on the whole, the updates agree to 0.1 %
    assert moved >= 0.9 * len(final0)  # the steps really trained (nearly) every variable


def test_runner_rejects_bad_np():
    with pytest.raises(LaunchError, match="non-zero"):
        HorovodRunner(np=0)
    with pytest.raises(LaunchError, match="local processes but this machine has"):
        HorovodRunner(np=-4096).check_slots()
