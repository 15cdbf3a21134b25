"""Engines of the one training loop: each supplies the step, the collectives and device placement.

``make_engine(name)`` builds one by its config name (``run.engine``): the frameworks are imported only then.
"""

from __future__ import annotations

ENGINES = ("horovod", "tf_distribute", "jax")


def make_engine(name: str, deterministic: bool = False, threads: int = 0, devices: int = 0):
    """``devices``: local JAX devices the ``jax`` engine trains on, data-parallel (0 = all)."""
    if name == "auto":  # normally resolved by the job on the driver already (and printed there)
        from ucluster.distributed import resolve_engine

        name = resolve_engine(name)[0]
    if name == "horovod":
        from ucluster.train.engines.horovod_tf import HorovodTFEngine

        return HorovodTFEngine(deterministic=deterministic, threads=threads)
    if name == "tf_distribute":
        from ucluster.train.engines.tf_distribute import TFDistributeEngine

        return TFDistributeEngine(deterministic=deterministic, threads=threads)
    if name == "jax":
        from ucluster.train.engines.jax_local import JaxLocalEngine

        return JaxLocalEngine(devices)
    raise ValueError(f"run.engine: unknown engine '{name}' (expected one of {', '.join(ENGINES)})")
