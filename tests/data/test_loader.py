"""Per-worker streaming: disjoint shards, equal steps, selection, determinism, bounded buffers."""

from __future__ import annotations

import numpy as np
import pytest

from ucluster.data import schema as S
from ucluster.data.loader import (
    JetStream,
    _Reservoir,
    hybrid_mass,
    joint_bin_targets,
    list_row_groups,
    mass_bin_targets,
    prefetch,
    shard_row_groups,
)


def _all_keys(stream: JetStream, batch_size: int = 32) -> np.ndarray:
    keys = [b["key"][b["valid"] > 0] for b in stream.eval_batches(batch_size)]
    return np.concatenate(keys) if keys else np.zeros(0, np.int64)


def test_shards_are_disjoint_balanced_and_cover_the_split(tiny_config):
    refs = list_row_groups(tiny_config.data.path, "train")
    shards = [shard_row_groups(refs, r, 3) for r in range(3)]
    assert sorted(sum(shards, []), key=lambda r: (r.path, r.index)) == sorted(refs, key=lambda r: (r.path, r.index))
    loads = [sum(r.num_rows for r in s) for s in shards]
    assert max(loads) - min(loads) <= max(r.num_rows for r in refs)
    keys = [set(_all_keys(JetStream(tiny_config, "train", r, 3))) for r in range(3)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    full = set(_all_keys(JetStream(tiny_config, "train", 0, 1)))
    assert keys[0] | keys[1] | keys[2] == full
    assert sum(JetStream(tiny_config, "train", r, 3).selected_rows() for r in range(3)) == len(full)


def test_selection_and_targets(tiny_config):
    """The jet selection, and the paper's target: equal-width bins of the jet mass (the default target's bins are
    test_hybrid_mass_target_of_the_stream's)."""
    tiny_config.model.target, tiny_config.model.mass_bin_spacing = "mass_bins", "linear"
    tiny_config.data.classes = ["w", "t"]
    tiny_config.data.mass_min, tiny_config.data.mass_max = 60.0, 220.0
    stream = JetStream(tiny_config, "train")
    batches = list(stream.eval_batches(64))
    mass = np.concatenate([b["mass"][b["valid"] > 0] for b in batches])
    label = np.concatenate([b["label"][b["valid"] > 0] for b in batches])
    target = np.concatenate([b["target"][b["valid"] > 0] for b in batches])
    assert mass.min() > 60 and mass.max() < 220 and set(label) == {0, 1}
    np.testing.assert_array_equal(target, mass_bin_targets(mass, 60.0, 220.0, tiny_config.model.mass_bins))
    b = batches[0]
    assert b["features"].shape == (64, 30, len(stream.meta.feature_names)) and b["features"].dtype == np.float32
    n = b["mask"].sum(axis=1)
    assert np.all(b["features"][np.arange(30)[None, :] >= n[:, None]] == 0)  # padding stays zero
    tiny_config.model.target = "truth"
    assert set(np.concatenate([x["target"] for x in JetStream(tiny_config, "train").eval_batches(64)])) <= {0, 1}


def test_joint_bin_targets_index_the_grid_row_major():
    m = np.array([15.0, 15.0, 245.0, 5.0, 300.0])
    tau = np.array([0.1, 0.9, 0.6, np.nan, 1.5])
    got = joint_bin_targets([m, tau], [(10.0, 250.0), (0.0, 1.0)], [3, 4])
    # mass bins 0, 0, 2, 0 (below: edge), 2 (above: edge); tau bins 0, 3, 2, 0 (NaN: the low edge), 3
    np.testing.assert_array_equal(got, [0 * 4 + 0, 0 * 4 + 3, 2 * 4 + 2, 0, 2 * 4 + 3])


def test_joint_bins_target_of_the_stream(tiny_config):
    tiny_config.model.target = "joint_bins"
    tiny_config.model.target_vars, tiny_config.model.target_bins = ["mass_sd", "tau21"], [5, 3]
    batches = list(JetStream(tiny_config, "train").eval_batches(64))
    v = np.concatenate([b["valid"] for b in batches]) > 0
    target = np.concatenate([b["target"] for b in batches])[v]
    msd = np.concatenate([b["mass_sd"] for b in batches])[v]
    tau = np.concatenate([b["tau21"] for b in batches])[v]
    d = tiny_config.data
    expected = mass_bin_targets(msd, d.mass_min, d.mass_max, 5) * 3 + mass_bin_targets(tau, 0.0, 1.0, 3)
    np.testing.assert_array_equal(target, expected)
    assert target.min() >= 0 and target.max() < 15 and len(np.unique(target)) >= 3


def test_log_spaced_mass_bins_have_equal_width_in_log_m():
    edges = 10.0 * 25.0 ** (np.arange(5) / 4)  # 4 log bins over [10, 250]: edges 10, 22.4, 50, 112, 250
    m = np.array([5.0, 10.0, edges[1] * 0.999, edges[1] * 1.001, 111.0, 113.0, 249.0, 400.0])
    np.testing.assert_array_equal(mass_bin_targets(m, 10.0, 250.0, 4, log=True), [0, 0, 0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(mass_bin_targets(m, 10.0, 250.0, 4), [0, 0, 0, 0, 1, 1, 3, 3])


def test_hybrid_mass_takes_m_sd_where_grooming_kept_the_prongs():
    m = np.array([100.0, 100.0, 100.0, 90.0])
    msd = np.array([80.0, 50.0, 49.9, np.nan])
    np.testing.assert_array_equal(hybrid_mass(m, msd, 0.5), [80.0, 50.0, 100.0, 90.0])
    np.testing.assert_array_equal(hybrid_mass(m, msd, 0.9), [100.0, 100.0, 100.0, 90.0])


@pytest.mark.parametrize("spacing", ["linear", "log"])
def test_hybrid_mass_target_of_the_stream(tiny_config, spacing):
    tiny_config.model.target, tiny_config.model.mass_bin_spacing = "mass_hybrid_bins", spacing
    batches = list(JetStream(tiny_config, "train").eval_batches(64))
    v = np.concatenate([b["valid"] for b in batches]) > 0
    target, mass, msd = (np.concatenate([b[k] for b in batches])[v] for k in ("target", "mass", "mass_sd"))
    d, m = tiny_config.data, tiny_config.model
    kept = msd >= m.hybrid_sd_fraction * mass
    assert 0.2 < kept.mean() < 0.95  # both branches occur on real jets
    expected = mass_bin_targets(np.where(kept, msd, mass), d.mass_min, d.mass_max, m.mass_bins, log=spacing == "log")
    np.testing.assert_array_equal(target, expected)
    assert not np.array_equal(target, mass_bin_targets(mass, d.mass_min, d.mass_max, m.mass_bins,
                                                       log=spacing == "log"))


def test_eval_window_selects_the_evaluated_splits_only(tiny_config):
    """The val/test jets follow data.eval_window, the training jets the training selection."""
    full = {s: len(_all_keys(JetStream(tiny_config, s))) for s in ("train", "test")}
    tiny_config.data.mass_min, tiny_config.data.mass_max = 120.0, 250.0  # the training selection shrinks
    tiny_config.data.eval_window = [10.0, 250.0, 0.0, 1.0e9]  # the evaluation stays on the original jets
    assert len(_all_keys(JetStream(tiny_config, "test"))) == full["test"]
    train = JetStream(tiny_config, "train")
    assert 0 < train.selected_rows() < full["train"] and train.window() == (120.0, 250.0, 0.0, 1.0e9)
    tiny_config.data.eval_window = [120.0, 250.0, 0.0, 1.0e9]
    mass = np.concatenate([b["mass"][b["valid"] > 0] for b in JetStream(tiny_config, "test").eval_batches(64)])
    assert len(mass) < full["test"] and mass.min() > 120.0


def test_epoch_batches_exact_steps_deterministic_and_shuffled(tiny_config):
    stream = JetStream(tiny_config, "train")
    steps = stream.selected_rows() // 32
    epoch0 = [b["key"] for b in stream.batches(32, steps, epoch=0, seed=1)]
    assert len(epoch0) == steps and all(len(k) == 32 for k in epoch0)
    again = [b["key"] for b in JetStream(tiny_config, "train").batches(32, steps, epoch=0, seed=1)]
    assert all(np.array_equal(a, b) for a, b in zip(epoch0, again, strict=True))
    epoch1 = np.concatenate([b["key"] for b in stream.batches(32, steps, epoch=1, seed=1)])
    flat0 = np.concatenate(epoch0)
    assert len(set(flat0)) == len(flat0)  # no jet twice in an epoch
    assert not np.array_equal(flat0, epoch1)
    assert len(list(stream.batches(32, 2, epoch=0))) == 2
    with pytest.raises(S.DatasetError, match="ran out"):
        list(stream.batches(32, steps + 5, epoch=0))


def test_unshuffled_batches_follow_file_order(tiny_config):
    """Unshuffled, the batches are consecutive jets in file order, whatever the buffer size."""
    tiny_config.data.shuffle_buffer = 64
    stream = JetStream(tiny_config, "train")
    steps = stream.selected_rows() // 16
    keys = np.concatenate([b["key"] for b in stream.batches(16, steps, epoch=0, shuffle=False)])
    np.testing.assert_array_equal(keys, _all_keys(stream)[: steps * 16])


def test_reservoir_hands_out_every_jet_once_within_its_memory():
    """Random draws take each added row exactly once, the arrays grow only to the buffer plus one chunk, and the
    in-order mode keeps the order the rows came in."""
    rng = np.random.default_rng(0)
    capacity, chunk = 50, 20
    res, drawn = _Reservoir(capacity), []
    for start in range(0, 400, chunk):
        res.add({"mass": np.arange(start, start + chunk, dtype=np.float32), "x": np.ones((chunk, 2, 3))})
        while len(res) >= capacity:
            drawn.append(res.draw(8, rng)["mass"])
        assert len(res.arrays["mass"]) <= capacity + chunk
    while len(res) >= 8:
        drawn.append(res.draw(8, rng)["mass"])
    flat = np.concatenate(drawn)
    assert len(flat) == len(set(flat)) == 400 and not np.array_equal(flat, np.sort(flat))
    ordered = _Reservoir()
    ordered.add({"mass": np.arange(10.0)})
    first = ordered.draw(4, None)["mass"]
    ordered.add({"mass": np.arange(10.0, 13.0)})
    rest = [ordered.draw(3, None)["mass"] for _ in range(3)]
    np.testing.assert_array_equal(np.concatenate([first, *rest]), np.arange(13.0))


def test_streaming_shuffle_mixes_one_class_files_to_the_end_of_the_epoch(tiny_config):
    """The session dataset has one file per class and row groups of <= 64 jets; with a buffer of ~4 row groups
    the last quarter of an epoch must still hold every class near its share of the epoch. Averaged over 6 epochs
    the largest deviation of a class share is 0.05-0.09 for seeds 0-9; a buffer emptied block by block feeds the
    last quarter from the last one or two row groups (one or two classes): 0.20-0.37."""
    tiny_config.data.shuffle_buffer = 256
    stream = JetStream(tiny_config, "train")
    steps = stream.selected_rows() // 16
    deviations = []
    for epoch in range(6):
        labels = np.stack([b["label"] for b in stream.batches(16, steps, epoch=epoch, seed=2)])
        share = np.bincount(labels.ravel(), minlength=3) / labels.size
        tail = labels[-(steps // 4):].ravel()
        deviations.append(np.abs(np.bincount(tail, minlength=3) / tail.size - share).max())
    assert np.mean(deviations) < 0.12, deviations


def test_eval_batches_visit_every_selected_jet_once_with_padding(tiny_config):
    stream = JetStream(tiny_config, "test")
    batches = list(stream.eval_batches(50))
    keys = np.concatenate([b["key"][b["valid"] > 0] for b in batches])
    assert len(keys) == len(set(keys)) == stream.selected_rows()
    assert all(b["features"].shape[0] == 50 for b in batches)
    last = batches[-1]
    assert np.all(last["mask"][last["valid"] == 0].sum(axis=1) >= 1)  # padded rows stay finite in the model
    capped = np.concatenate([b["key"][b["valid"] > 0] for b in stream.eval_batches(20, max_jets=45)])
    assert len(capped) == len(set(capped)) == 45 and set(capped) <= set(keys)  # capped: test below


def test_prefetch_propagates_errors_and_stops_early():
    def gen():
        yield {"x": np.zeros(1)}
        raise RuntimeError("boom in reader")

    it = prefetch(gen())
    next(it)
    with pytest.raises(RuntimeError, match="boom in reader"):
        next(it)
    infinite = prefetch({"x": np.full(1, i)} for i in range(10**9))
    assert [int(next(infinite)["x"][0]) for _ in range(3)] == [0, 1, 2]
    infinite.close()


def test_bad_dataset_paths(tiny_config, tmp_path):
    tiny_config.data.path = str(tmp_path / "missing")
    with pytest.raises(S.DatasetError, match="dataset not found"):
        JetStream(tiny_config, "train")
    (tmp_path / "plain").mkdir()
    tiny_config.data.path = str(tmp_path / "plain")
    with pytest.raises(S.DatasetError, match="not a ucluster Parquet dataset"):
        JetStream(tiny_config, "train")


def test_cached_shard_gives_the_same_batches_without_reading_parquet_again(tiny_config, tmp_path):
    """data.cache: the epochs and evaluations of a cached stream are those of an uncached one, and after the
    first pass the shard comes from memory (its files can be gone)."""
    import dataclasses
    import shutil

    root = tmp_path / "jets.parquet"
    shutil.copytree(tiny_config.data.path, root)
    plain = JetStream(tiny_config, "train")
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, path=str(root), cache=True))
    cached = JetStream(cfg, "train")
    steps = plain.selected_rows() // 32
    assert cached.selected_rows() == plain.selected_rows()

    def epoch(stream: JetStream, e: int) -> list[dict]:
        return list(stream.batches(32, steps, epoch=e, seed=3))

    reference = {e: epoch(plain, e) for e in (0, 1)}
    first = epoch(cached, 0)
    shutil.rmtree(root / "split=train")  # from here on the cached stream can only use memory
    for e, got in ((0, first), (1, epoch(cached, 1)), (0, epoch(cached, 0))):
        for a, b in zip(reference[e], got, strict=True):
            for key in ("key", "features", "mask", "target"):
                np.testing.assert_array_equal(a[key], b[key])
    evals = [list(cached.eval_batches(50)) for _ in range(2)]  # padding must not write into the cache
    for a, b, c in zip(evals[0], evals[1], plain.eval_batches(50), strict=True):
        for key in ("key", "features", "mask", "valid"):
            np.testing.assert_array_equal(a[key], c[key])
            np.testing.assert_array_equal(b[key], c[key])


def test_capped_evaluation_samples_every_class_and_the_same_jets_each_time(tiny_config):
    """Files often hold one class each (one per simulation task): a cap must not take the first files only."""
    from ucluster.data.loader import spread_order

    assert sorted(spread_order(7)) == list(range(7)) and len(set(spread_order(100)[:10] // 10)) >= 8
    tiny_config.data.reader_threads = 1
    stream = JetStream(tiny_config, "train")  # 9 row groups in class-sorted files
    labels = np.concatenate([b["label"][b["valid"] > 0] for b in stream.eval_batches(32)])
    cap = len(labels) // 4
    assert len(set(labels[:cap])) == 1  # the premise: in file order the first quarter is one class
    capped = [np.concatenate([b[k][b["valid"] > 0] for b in stream.eval_batches(32, cap)]) for k in ("label", "key")]
    assert len(capped[0]) == cap and set(capped[0]) == set(labels)
    again = np.concatenate([b["key"][b["valid"] > 0] for b in JetStream(tiny_config, "train").eval_batches(32, cap)])
    np.testing.assert_array_equal(again, capped[1])
    # a cap below one row group is shared among all of them, not filled from the first (one file, one class)
    small = np.concatenate([b["label"][b["valid"] > 0] for b in stream.eval_batches(32, 12)])
    assert len(small) == 12 and set(small) == set(labels), small


@pytest.mark.parametrize("cap", [5, 12, 100, -1])
def test_capped_evaluation_shares_the_cap_among_row_groups(tiny_config, cap):
    """Each row group gives an equal share (groups past the cap give none; a group short of its share is made up
    from the others' rows), so the cap is met exactly whenever the shard holds enough jets."""
    tiny_config.data.reader_threads = 1
    stream = JetStream(tiny_config, "train")
    group_of = {key: g for g, ref in enumerate(stream.refs) for key in stream._read(ref)["key"]}
    sizes = np.bincount(list(group_of.values()), minlength=len(stream.refs))
    cap = len(group_of) - 3 if cap < 0 else cap  # nearly everything: the short last groups force a top-up
    keys = np.concatenate([b["key"][b["valid"] > 0] for b in stream.eval_batches(32, cap)])
    assert len(keys) == len(set(keys)) == cap
    taken = np.bincount([group_of[k] for k in keys], minlength=len(stream.refs))
    assert np.all(taken <= sizes)
    if cap <= sizes.min() * len(sizes):  # no group short of its share: equal shares, within one jet
        assert taken.max() - taken.min() <= 1 or cap < len(sizes) and taken.max() == 1, taken
    assert np.count_nonzero(taken) == min(cap, len(sizes))
