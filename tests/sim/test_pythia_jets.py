"""Pythia 8 + fastjet jets: physics peaks, hls4ml layout, reproducibility and the Spark path (real Pythia)."""

from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from jobs import simulate_jets
from ucluster import hls4ml
from ucluster.sim import pythia_jets as pj

P = 100
SIZES = {"w": 60, "z": 60, "t": 60, "q": 8, "g": 8}
SEEDS = {kind: 4242 + i for i, kind in enumerate(SIZES)}
JET = {name: i for i, name in enumerate(pj.JET_FEATURES)}
PRT = {name: i for i, name in enumerate(hls4ml.PARTICLE_FEATURES)}


@pytest.fixture(scope="module")
def samples() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generated once: ~60 jets per boosted kind is enough to locate the mass peaks to a few GeV."""
    return {kind: pj.generate_jets(kind, n, SEEDS[kind], max_particles=P) for kind, n in SIZES.items()}


def _kept(jets: np.ndarray) -> np.ndarray:
    return np.minimum(jets[:, JET["j_multiplicity"]], P).astype(int)


@pytest.mark.parametrize(("kind", "expected", "tolerance"), [("w", 96.0, 12.0), ("z", 105.0, 12.0),
                                                             ("t", 190.0, 25.0)])
def test_mass_peaks(samples, kind, expected, tolerance):
    median = float(np.median(samples[kind][1][:, JET["j_mass"]]))
    assert abs(median - expected) < tolerance, f"{kind} median jet mass {median:.1f} GeV"


@pytest.mark.parametrize(("kind", "expected", "tolerance"), [("w", 80.4, 10.0), ("z", 91.2, 10.0),
                                                             ("t", 172.5, 25.0)])
def test_groomed_mass_peaks_at_the_particle_masses(samples, kind, expected, tolerance):
    """Soft drop removes the soft wide-angle radiation that pushes the plain jet mass up (W ~ 97 GeV)."""
    jets = samples[kind][1]
    groomed, plain = jets[:, JET["j_mass_mmdt"]], jets[:, JET["j_mass"]]
    median = float(np.median(groomed))
    assert abs(median - expected) < tolerance, f"{kind} median soft-drop mass {median:.1f} GeV"
    assert abs(median - expected) < abs(float(np.median(plain)) - expected)
    assert (groomed >= 0).all() and (groomed <= plain * (1 + 1e-5) + 1e-3).all()  # grooming only removes


def test_nsubjettiness_counts_the_prongs(samples):
    med = {kind: {c: float(np.median(samples[kind][1][:, JET[c]])) for c in ("j_tau21_b1", "j_tau32_b1")}
           for kind in ("w", "z", "t")}
    for boson in ("w", "z"):  # two prongs: lower tau21 than top; top's three prongs: lower tau32
        assert med[boson]["j_tau21_b1"] + 0.1 < med["t"]["j_tau21_b1"], med
        assert med["t"]["j_tau32_b1"] + 0.15 < med[boson]["j_tau32_b1"], med
    for kind in SIZES:
        jets = samples[kind][1].astype(np.float64)
        t1, t2, t3 = (jets[:, JET[f"j_tau{n}_b1"]] for n in (1, 2, 3))
        assert (t1 > 0).all() and (t2 >= 0).all() and (t3 >= 0).all()
        np.testing.assert_allclose(jets[:, JET["j_tau21_b1"]], t2 / t1, rtol=1e-5)
        np.testing.assert_allclose(jets[:, JET["j_tau32_b1"]], np.divide(t3, t2, out=np.zeros_like(t2),
                                                                          where=t2 > 0), rtol=1e-5)


def test_substructure_is_computed_from_the_jet_constituents(samples):
    """Recomputed from the stored four-vectors (jets with every constituent kept), the values agree."""
    from ucluster.sim.substructure import SUBSTRUCTURE_COLUMNS, substructure

    constituents, jets = samples["t"]
    full = np.flatnonzero(jets[:, JET["j_multiplicity"]] <= P)[:10]
    assert len(full) >= 5
    for row in full:
        k = int(jets[row, JET["j_multiplicity"]])
        p4 = constituents[row, :k][:, [PRT[c] for c in ("j1_px", "j1_py", "j1_pz", "j1_e")]].astype(np.float64)
        again = substructure(p4, pj.JET_R)
        for name in SUBSTRUCTURE_COLUMNS:
            np.testing.assert_allclose(jets[row, JET[name]], again[name], rtol=2e-3, atol=2e-3, err_msg=name)


@pytest.mark.parametrize("kind", list(SIZES))
def test_shapes_labels_and_pt_window(samples, kind):
    constituents, jets = samples[kind]
    n = SIZES[kind]
    assert constituents.shape == (n, P, len(hls4ml.PARTICLE_FEATURES)) and constituents.dtype == np.float32
    assert jets.shape == (n, len(pj.JET_FEATURES)) and jets.dtype == np.float32
    assert np.isfinite(constituents).all() and np.isfinite(jets).all()
    onehot = jets[:, [JET[c] for c in hls4ml.CLASS_COLUMNS]]
    assert (onehot[:, pj.KINDS.index(kind)] == 1).all() and onehot.sum(axis=1).tolist() == [1] * n
    assert (jets[:, JET[hls4ml.UNDEFINED_COLUMN]] == 0).all()
    assert ((jets[:, JET["j_pt"]] > 900) & (jets[:, JET["j_pt"]] < 1300)).all()


@pytest.mark.parametrize("kind", ["w", "t"])
def test_padding_is_zero_and_particles_sorted_by_pt(samples, kind):
    constituents, jets = samples[kind]
    for row, k in zip(constituents, _kept(jets), strict=True):
        assert (row[k:] == 0).all()
        pt = row[:k, PRT["j1_pt"]]
        assert (pt > 0).all() and (np.diff(pt) <= 0).all()
    if kind == "t":  # boosted tops often exceed P constituents: the truncation path is exercised
        assert (jets[:, JET["j_multiplicity"]] > P).any()


def test_constituents_reproduce_the_jet(samples):
    constituents, jets = samples["w"]
    full = jets[:, JET["j_multiplicity"]] <= P
    assert full.sum() > 40
    p4 = constituents[full][..., [PRT["j1_px"], PRT["j1_py"], PRT["j1_pz"], PRT["j1_e"]]].astype(np.float64)
    px, py, pz, e = p4.sum(axis=1).T
    np.testing.assert_allclose(np.hypot(px, py), jets[full, JET["j_pt"]], rtol=1e-5)
    np.testing.assert_allclose(np.sqrt(e**2 - px**2 - py**2 - pz**2), jets[full, JET["j_mass"]], rtol=1e-3)
    np.testing.assert_allclose(np.arctan2(py, px), jets[full, JET["j_phi"]], atol=1e-5)
    np.testing.assert_allclose(constituents[full][..., PRT["j1_erel"]].sum(axis=1), 1.0, rtol=1e-5)


def test_feature_definitions(samples):
    constituents, jets = samples["z"]
    for row, jet, k in zip(constituents, jets, _kept(jets), strict=True):
        f = {name: row[:k, i].astype(np.float64) for name, i in PRT.items()}
        np.testing.assert_allclose(f["j1_pt"], np.hypot(f["j1_px"], f["j1_py"]), rtol=1e-5)
        np.testing.assert_allclose(f["j1_ptrel"], f["j1_pt"] / jet[JET["j_pt"]], rtol=1e-5)
        np.testing.assert_allclose(f["j1_etarel"], f["j1_eta"] - jet[JET["j_eta"]], atol=1e-5)
        assert ((f["j1_phirel"] >= -np.pi) & (f["j1_phirel"] < np.pi)).all()
        dr2 = f["j1_etarel"] ** 2 + f["j1_phirel"] ** 2
        np.testing.assert_allclose(f["j1_deltaR"] ** 2, dr2, atol=1e-6)
        np.testing.assert_allclose(f["j1_etarot"] ** 2 + f["j1_phirot"] ** 2, dr2, atol=1e-6)
        p_abs = np.sqrt(f["j1_px"] ** 2 + f["j1_py"] ** 2 + f["j1_pz"] ** 2)
        np.testing.assert_allclose(f["j1_costheta"], f["j1_pz"] / p_abs, atol=1e-6)
        # anti-kT measures distance in rapidity, so soft massive hadrons may sit beyond R in eta: loose bound.
        assert (f["j1_costhetarel"] > 0).all() and (f["j1_costhetarel"] <= 1 + 1e-6).all()
        if jet[JET["j_multiplicity"]] <= P:  # the principal axis is taken over all constituents
            w = f["j1_pt"]
            assert np.sum(w * f["j1_etarot"] ** 2) >= np.sum(w * f["j1_phirot"] ** 2) - 1e-6
            assert f["j1_etarot"][0] >= 0


def test_same_seed_same_jets_other_seed_other_jets(samples):
    constituents, jets = samples["w"]
    c4, j4 = pj.generate_jets("w", 4, SEEDS["w"], max_particles=P)
    np.testing.assert_array_equal(c4, constituents[:4])  # a shorter run is a prefix of a longer one
    np.testing.assert_array_equal(j4, jets[:4])
    c30, j30 = pj.generate_jets("w", 2, SEEDS["w"], max_particles=30)
    np.testing.assert_array_equal(c30, constituents[:2, :30])  # P only truncates
    np.testing.assert_array_equal(j30, jets[:2])
    _, other = pj.generate_jets("w", 2, SEEDS["w"] + 1000, max_particles=P)
    assert not np.array_equal(other, jets[:2])


def test_q_and_g_jets(samples):
    for kind in ("q", "g"):
        constituents, jets = samples[kind]
        assert len(jets) == SIZES[kind] and (jets[:, JET["j_multiplicity"]] > 1).all()
    # Gluon jets radiate more than quark jets: more constituents on average.
    assert samples["g"][1][:, JET["j_multiplicity"]].mean() > samples["q"][1][:, JET["j_multiplicity"]].mean()


def test_file_layout(samples, tmp_path):
    constituents, jets = samples["w"]
    path = pj.write_hls4ml_file(tmp_path / "w.h5", constituents, jets, attrs={"kind": "w", "seed": 7})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.h5"]
    with h5py.File(path, "r") as f:
        assert set(f) == {hls4ml.CONSTITUENTS, hls4ml.PARTICLE_NAMES, hls4ml.JETS, hls4ml.JET_NAMES}
        assert f[hls4ml.CONSTITUENTS].dtype == np.float32 and f[hls4ml.JETS].dtype == np.float32
        for key, names in ((hls4ml.PARTICLE_NAMES, hls4ml.PARTICLE_FEATURES),
                           (hls4ml.JET_NAMES, pj.JET_FEATURES)):
            raw = f[key][()]
            assert raw.dtype.kind == "S" and tuple(v.decode() for v in raw) == names
        np.testing.assert_array_equal(f[hls4ml.CONSTITUENTS][()], constituents)
        np.testing.assert_array_equal(f[hls4ml.JETS][()], jets)
        assert f.attrs["kind"] == "w" and f.attrs["seed"] == 7
    assert {"j_pt", "j_eta", "j_phi", "j_mass", "j_multiplicity", *hls4ml.CLASS_COLUMNS, "j_undef", "j_mass_mmdt",
            "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau21_b1", "j_tau32_b1"} <= set(pj.JET_FEATURES)


def test_failed_write_leaves_nothing(samples, tmp_path):
    constituents, jets = samples["w"]
    with pytest.raises(TypeError):
        pj.write_hls4ml_file(tmp_path / "bad.h5", constituents, jets, attrs={"bad": object()})
    with pytest.raises(ValueError, match="features"):
        pj.write_hls4ml_file(tmp_path / "bad.h5", constituents[..., :5], jets)
    assert list(tmp_path.iterdir()) == []


def test_plan_tasks_seeds_are_distinct_and_bounded():
    tasks = pj.plan_tasks("w,z,t", 1001, seed=3, jets_per_task=250)
    assert [t.n_jets for t in tasks if t.kind == "w"] == [250, 250, 250, 250, 1]
    more = pj.plan_tasks(["w", "z", "t"], 1001, seed=4, jets_per_task=250)
    seeds = [t.seed for t in tasks + more]
    assert len(set(seeds)) == len(seeds)
    top = pj.plan_tasks(list(pj.KINDS), 1, seed=pj.MAX_BASE_SEED)
    assert max(t.seed for t in top) <= pj.MAX_PYTHIA_SEED
    for bad in ({"kinds": "w,x"}, {"seed": 0}, {"seed": pj.MAX_BASE_SEED + 1}, {"jets_per_kind": 0},
                {"jets_per_task": 0}, {"kinds": "w,w"}):
        args = {"kinds": "w", "jets_per_kind": 10, "seed": 1, "jets_per_task": 5, **bad}
        with pytest.raises(ValueError):
            pj.plan_tasks(**args)


def test_simulate_to_hdf5_on_spark(spark, tmp_path):
    out = tmp_path / "sim"
    files = pj.simulate_to_hdf5(spark, out, ["w"], jets_per_kind=4, seed=5, jets_per_task=2)
    tasks = pj.plan_tasks(["w"], 4, seed=5, jets_per_task=2)
    assert files == sorted(out / t.file_name for t in tasks) and len(files) == 2
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in files]  # no .tmp left behind
    seeds = set()
    for path in files:
        with h5py.File(path, "r") as f:
            assert f[hls4ml.CONSTITUENTS].shape == (2, 100, 16)
            assert f.attrs["kind"] == "w" and "Random:seed" in f.attrs["pythia_settings"]
            seeds.add(int(f.attrs["seed"]))
    assert seeds == {t.seed for t in tasks}
    summary = pj.summarize_files(files)
    assert list(summary) == ["w"] and summary["w"][0] == 4
    with pytest.raises(FileExistsError, match="overwrite=True"):
        pj.simulate_to_hdf5(spark, out, ["w"], jets_per_kind=4, seed=5, jets_per_task=2)


class _LocalRDD:
    """Just enough of an RDD to run the driver logic in-process, where monkeypatching reaches the tasks."""

    def __init__(self, items):
        self.items = list(items)

    def map(self, fn):
        return _LocalRDD(map(fn, self.items))

    def collect(self):
        return self.items


def test_failed_task_is_named_and_leaves_no_partial_files(monkeypatch, samples, tmp_path):
    fake_spark = SimpleNamespace(sparkContext=SimpleNamespace(parallelize=lambda items, n: _LocalRDD(items)))
    constituents, jets = samples["z"]
    tasks = pj.plan_tasks("z", 4, seed=9, jets_per_task=2)

    def fake_generate(kind, n_jets, seed, max_particles=100, progress=False):
        if seed == tasks[1].seed:
            raise RuntimeError("boom\nsecond line")
        return constituents[:n_jets, :max_particles], jets[:n_jets]

    monkeypatch.setattr(pj, "generate_jets", fake_generate)
    with pytest.raises(RuntimeError, match=rf"^simulation task kind=z seed={tasks[1].seed} failed: "
                                           r"RuntimeError: boom$"):
        pj.simulate_to_hdf5(fake_spark, tmp_path, "z", 4, seed=9, jets_per_task=2)
    assert [p.name for p in tmp_path.iterdir()] == [tasks[0].file_name]  # finished file kept, no .tmp

    monkeypatch.setattr(pj, "generate_jets", lambda kind, n_jets, seed, max_particles=100, progress=False: (
        constituents[:n_jets], jets[:n_jets]))
    files = pj.simulate_to_hdf5(fake_spark, tmp_path, "z", 4, seed=9, jets_per_task=2, overwrite=True)
    assert [p.name for p in files] == [t.file_name for t in tasks]
    assert isinstance(files[0], Path)


@pytest.mark.parametrize("argv", [["--kinds", "w,x"], ["--jets-per-kind", "0"], ["--seed", "99999"], []])
def test_cli_rejects_bad_arguments_in_one_line(argv, tmp_path, capsys):
    args = argv if argv == [] else ["--out", str(tmp_path / "out"), *argv]
    with pytest.raises(SystemExit) as exit_info:
        simulate_jets.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ucluster-simulate: error:")
    assert not (tmp_path / "out").exists()


def test_cli_runs_on_the_active_session(spark, tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--kinds", "q", "--jets-per-kind", "2", "--jets-per-task", "2", "--seed", "3"]
    assert simulate_jets.main(argv) == 0
    stdout = capsys.readouterr().out
    (path,) = out.iterdir()
    assert str(path) in stdout and "q: 2 jets, median jet mass" in stdout
    assert not spark.sparkContext._jsc.sc().isStopped()  # a session the job did not create is left running
    assert simulate_jets.main(argv) == 2  # existing files are not replaced without --overwrite
    assert "--overwrite" in capsys.readouterr().err
