"""Real worker processes, for each distributed engine: 2-worker updates equal the 1-worker update on the
concatenated batch, and the engine's collectives agree with numpy."""

from __future__ import annotations

import sys

import cloudpickle
import numpy as np
import pytest

from ucluster.data.loader import JetStream
from ucluster.distributed import RUNNERS, HorovodRunner, LaunchError, TFDistributeRunner

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the test module

ENGINES = ("horovod", "tf_distribute")


def _train_steps(engine_name: str, config: dict, batches: list[dict], seed: int, lr: float, beta: float,
                 perturb: bool = False) -> tuple:
    """Build the model (``perturb``: non-root weights moved, which the engine's setup must undo), set the engine
    up, train on this rank's part of each batch; (engine, model, trainable weights right after the setup)."""
    import keras

    from ucluster.config import config_from_dict
    from ucluster.model import build_model
    from ucluster.train.engines import make_engine
    from ucluster.train.loop import n_classes

    engine = make_engine(engine_name)
    cfg = config_from_dict(config)
    keras.utils.set_random_seed(seed)
    f = batches[0]["features"]
    model = build_model(cfg.model, f.shape[1], f.shape[2], n_classes(cfg))
    size, rank = engine.size, engine.rank
    if perturb and rank != 0:
        for v in model.trainable_variables:
            v.assign(v.numpy() + 0.5)
    optimizer = keras.optimizers.Adam(learning_rate=lr)
    optimizer.build(model.trainable_variables)
    engine.setup(model, optimizer, cfg.train.gamma, None)
    initial = [v.numpy() for v in model.trainable_variables]
    for batch in batches:
        n = len(batch["target"])
        part = slice(rank * n // size, (rank + 1) * n // size)
        engine.step({k: v[part] for k, v in batch.items()}, alpha=2.0, beta=beta)
    return engine, model, initial


def _steps_worker(engine_name: str, config: dict, batches: list[dict], lr: float) -> list:
    """Rank 0 returns every rank's (initial, final) weights of :func:`_train_steps` (perturbed non-root weights)
    and the collectives' answers."""
    engine, model, initial = _train_steps(engine_name, config, batches, 123, lr, beta=10.0, perturb=True)
    rank = engine.rank
    final = [v.numpy() for v in model.trainable_variables]
    collectives = {
        "sum": engine.allreduce_sum(np.array([rank + 1.0, 2.5])),
        "gather": engine.allgather(np.full((rank + 1, 2), rank, np.float32)),  # unequal rows per rank
        "objects": engine.allgather_object({"rank": rank}),
        "broadcast": engine.broadcast_object(f"from {rank}"),
    }
    return engine.allgather_object((initial, final)) + [collectives]


@pytest.fixture(scope="module")
def local_runs(tiny_overrides, tmp_path_factory):
    """``runs(engine, np)``: _steps_worker on |np| local workers of ``engine``, each run once per module (the
    2-worker tf_distribute run is the reference of the Spark barrier test too), on the same 3 batches."""
    from ucluster.config import load_config

    tiny_config = load_config(None, {**tiny_overrides, "run.output_dir": str(tmp_path_factory.mktemp("steps"))})
    stream = JetStream(tiny_config, "train")
    kwargs = {"config": tiny_config.to_dict(), "batches": list(stream.batches(32, 3, epoch=0, seed=5)), "lr": 1e-3}
    done: dict = {}

    def runs(engine: str, np_: int):
        if (engine, np_) not in done:
            done[engine, np_] = RUNNERS[engine](np=np_).run(_steps_worker, engine_name=engine, **kwargs)
        return done[engine, np_]

    runs.kwargs = kwargs
    return runs


@pytest.mark.parametrize("engine", ENGINES)
def test_two_workers_match_one_worker_on_the_concatenated_batch(local_runs, engine):
    kwargs = local_runs.kwargs
    batches = kwargs["batches"]
    *two, coll = local_runs(engine, -2)
    *one, _ = local_runs(engine, -1)
    assert len(two) == 2 and len(one) == 1
    (init0, final0), (init1, final1), (init_single, final_single) = two[0], two[1], one[0]
    moved, diff_sum, update_sum = 0, 0.0, 0.0
    # Adam moves each weight by at most ~lr per step whatever the gradient's size, so float round-off in a
    # near-zero gradient can show as a small fraction of one step: bound the difference by that scale.
    step_scale = kwargs["lr"] * len(batches)
    for i, (a, b, single) in enumerate(zip(final0, final1, final_single, strict=True)):
        np.testing.assert_array_equal(init0[i], init1[i])  # rank 0's weights replaced rank 1's perturbation
        np.testing.assert_array_equal(init0[i], init_single[i])
        np.testing.assert_array_equal(a, b)  # ranks hold identical weights after the steps
        np.testing.assert_allclose(a, single, rtol=0, atol=0.02 * step_scale)
        diff_sum += float(np.abs(a - single).sum())
        update_sum += float(np.abs(single - init0[i]).sum())
        moved += int(not np.allclose(single, init0[i]))
    assert diff_sum < 1e-3 * update_sum  # on the whole, the updates agree to 0.1 %
    assert moved >= 0.9 * len(final0)  # the steps really trained (nearly) every variable
    np.testing.assert_array_equal(coll["sum"], [3.0, 5.0])
    np.testing.assert_array_equal(coll["gather"], [[0, 0], [1, 1], [1, 1]])
    assert coll["objects"] == [{"rank": 0}, {"rank": 1}]
    assert coll["broadcast"] == "from 0"


def _dino_centre_worker(engine_name: str, config: dict, batches: list[dict]) -> list:
    """Self-distillation steps (:func:`_train_steps`); every rank's centre and teacher weights."""
    engine, model, _ = _train_steps(engine_name, config, batches, 7, 1e-3, beta=0.0)
    layer = model.get_layer("ssl_self_distillation")
    teacher = [v.numpy() for v in model.non_trainable_variables if v.path.startswith("teacher_")]
    return engine.allgather_object((layer.center.numpy(), teacher))


@pytest.mark.parametrize("engine", ENGINES)
def test_self_distillation_centre_is_the_global_batch_mean_on_every_worker(local_runs, engine):
    """model.ssl_method dino on 2 workers: each worker sees other jets, yet the centre (moved by the mean of the
    teacher's scores over the whole global batch) and the teachers are the same on both."""
    from ucluster.config import config_from_dict

    cfg = config_from_dict(local_runs.kwargs["config"])
    cfg.model.ssl_weight, cfg.model.ssl_method, cfg.model.ssl_prototypes = 1.0, "dino", 8
    (c0, t0), (c1, t1) = RUNNERS[engine](np=-2).run(
        _dino_centre_worker, engine_name=engine, config=cfg.to_dict(), batches=local_runs.kwargs["batches"])
    assert np.abs(c0).max() > 0
    np.testing.assert_allclose(c0, c1, rtol=1e-5, atol=1e-7)
    for a, b in zip(t0, t1, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("runner", [HorovodRunner, TFDistributeRunner])
def test_runner_rejects_bad_np(runner):
    with pytest.raises(LaunchError, match="non-zero"):
        runner(np=0)
    with pytest.raises(LaunchError, match="local processes but this machine has"):
        runner(np=-4096).check_slots()


def test_tf_distribute_in_a_spark_barrier_stage_matches_local_processes(local_runs, spark):
    """np > 0: two Spark tasks of one barrier stage build TF_CONFIG from the task infos and train together."""
    *spark_two, coll = TFDistributeRunner(np=2, spark=spark).run(_steps_worker, engine_name="tf_distribute",
                                                                 **local_runs.kwargs)
    *local_two, _ = local_runs("tf_distribute", -2)  # the same batches on two local processes
    for (_, a), (_, b) in zip(spark_two, local_two, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6)
    assert coll["objects"] == [{"rank": 0}, {"rank": 1}]
