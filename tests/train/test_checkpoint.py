"""Which stored checkpoint states a resume may continue (ucluster.train.checkpoint.check_compatible)."""

from ucluster.config import load_config
from ucluster.train import checkpoint as ckpt


def _state_without(cfg, section: str, key: str) -> dict:
    """The identity a checkpoint of an older version stores: its config lacks ``section.key``, and its hash is
    over the fields it had."""
    stored = cfg.to_dict()
    del stored[section][key]
    flat = {k: v for k, v in cfg.flat().items() if k != f"{section}.{key}"}
    return {"config_hash": ckpt.config_hash(flat), "config": stored}


def test_a_checkpoint_from_before_a_new_field_resumes_when_the_field_keeps_the_old_behaviour():
    cfg = load_config(None)
    state = _state_without(cfg, "train", "cluster_lr_factor")
    assert state["config_hash"] != ckpt.config_hash(cfg.flat())
    assert ckpt.check_compatible("ck", state, cfg.flat(), "unused") is None


def test_a_new_field_set_away_from_the_old_behaviour_is_refused_by_name():
    cfg = load_config(None)
    state = _state_without(cfg, "train", "cluster_lr_factor")
    changed = load_config(None, {"train.cluster_lr_factor": 0.5})
    reason = ckpt.check_compatible("ck", state, changed.flat(), "unused")
    assert reason is not None and "train.cluster_lr_factor" in reason and reason.startswith("ck was written")


def test_a_changed_field_is_refused_and_epochs_may_change():
    cfg = load_config(None)
    state = {"config_hash": ckpt.config_hash(cfg.flat()), "config": cfg.to_dict()}
    assert ckpt.check_compatible("ck", state, load_config(None, {"train.epochs": 80}).flat(), "unused") is None
    reason = ckpt.check_compatible("ck", state, load_config(None, {"train.beta": 3}).flat(), "unused")
    assert reason is not None and "train.beta" in reason


def test_a_state_without_its_config_is_refused_when_the_hash_differs():
    cfg = load_config(None)
    reason = ckpt.check_compatible("ck", {"config_hash": "0" * 64}, cfg.flat(), "unused")
    assert reason is not None and "written for another configuration" in reason
