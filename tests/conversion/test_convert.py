"""The converter on real Pythia jets: physics of the features, determinism, bad inputs, Spark round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conversion import job
from conversion.convert import assign_splits, convert, jet_keys
from conversion.hls4ml_reader import ConversionError
from ucluster import hls4ml
from ucluster.data import schema as S


def _read(ds: Path, split: str | None = None):
    paths = S.split_files(ds, split) if split else [p for s in S.SPLITS for p in S.split_files(ds, s)]
    return pq.ParquetDataset(paths).read().to_pandas() if paths else None


def _h5(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


def _write_h5(path: Path, data: dict) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            f.create_dataset(k, data=v)
    return path


def _names(raw) -> list[str]:
    return [n.decode() for n in raw]


# --------------------------------------------------------------------------------------------------------
def test_features_match_independent_computation_from_four_vectors(jet_dataset, pythia_h5_dir):
    """Every stored feature agrees with Δη, Δφ, logs, ΔR, cosθ recomputed from px, py, pz, E alone."""
    meta = S.read_meta(jet_dataset)
    df = _read(jet_dataset)
    checked = 0
    for source, rows in df.groupby("source_file"):
        raw = _h5(pythia_h5_dir / source)
        pn, jn = _names(raw[hls4ml.PARTICLE_NAMES]), _names(raw[hls4ml.JET_NAMES])
        cons = raw[hls4ml.CONSTITUENTS].astype(np.float64)
        mult = raw[hls4ml.JETS][:, jn.index("j_multiplicity")]
        for _, row in rows.iterrows():
            r = int(row["source_row"])
            if mult[r] > cons.shape[1]:
                continue  # the jet axis needs every constituent: only jets with all of them stored
            p4 = cons[r][:, [pn.index(c) for c in ("j1_px", "j1_py", "j1_pz", "j1_e")]]
            real = p4[:, 3] > 0
            p4 = p4[real]
            jet = p4.sum(axis=0)
            pt, jpt = np.hypot(p4[:, 0], p4[:, 1]), np.hypot(jet[0], jet[1])
            eta, jeta = np.arcsinh(p4[:, 2] / pt), np.arcsinh(jet[2] / jpt)
            dphi = np.angle(np.exp(1j * (np.arctan2(p4[:, 1], p4[:, 0]) - np.arctan2(jet[1], jet[0]))))
            deta = eta - jeta
            cos_rel = (p4[:, :3] @ jet[:3]) / (np.linalg.norm(p4[:, :3], axis=1) * np.linalg.norm(jet[:3]))
            expected = {
                "deta": deta, "dphi": dphi, "log_pt": np.log(pt), "log_e": np.log(p4[:, 3]),
                "log_ptrel": np.log(pt / jpt), "log_erel": np.log(p4[:, 3] / jet[3]),
                "delta_r": np.hypot(deta, dphi), "costheta_rel": cos_rel,
            }
            feats = np.frombuffer(row["features"], "<f4").astype(np.float64).reshape(meta.n_particles, -1)
            n = int(row["n_particles"])
            assert n == real.sum()
            for j, name in enumerate(meta.feature_names):
                np.testing.assert_allclose(feats[:n, j], expected[name], atol=2e-3, rtol=1e-3, err_msg=name)
            assert np.all(feats[n:] == 0)
            np.testing.assert_allclose(row["jet_pt"], jpt, rtol=1e-3)
            mass = np.sqrt(max(jet[3] ** 2 - jet[0] ** 2 - jet[1] ** 2 - jet[2] ** 2, 0))
            np.testing.assert_allclose(row["jet_mass"], mass, rtol=2e-3, atol=0.05)
            checked += 1
    assert checked > 100


def test_dataset_metadata_labels_and_finiteness(jet_dataset):
    meta = S.read_meta(jet_dataset)
    assert meta.n_particles == 100 and meta.feature_names[:2] == ["deta", "dphi"]
    assert meta.class_names == list(hls4ml.CLASS_NAMES)
    df = _read(jet_dataset)
    assert len(df) == 600 and df["jet_key"].is_unique
    assert set(df["label"]) == {2, 3, 4}  # w, z, t
    feats = np.stack([np.frombuffer(v, "<f4") for v in df["features"]])
    assert np.isfinite(feats).all()
    one_file = pq.read_schema(S.split_files(jet_dataset, "train")[0])
    assert S.DatasetMeta.from_json(one_file.metadata[S.META_KEY].decode()).feature_names == meta.feature_names
    counts = sum(n for c in meta.counts.values() for n in c.values())
    assert counts == 600


def test_row_groups_are_sized_for_streaming(jet_dataset):
    for path in S.split_files(jet_dataset, "train"):
        md = pq.ParquetFile(path).metadata
        assert all(md.row_group(i).num_rows <= 64 for i in range(md.num_row_groups))


def test_rerun_gives_identical_bytes_and_split_independent_of_chunking(pythia_h5_dir, tmp_path):
    a = convert(str(pythia_h5_dir), tmp_path / "a", progress=False)
    convert(str(pythia_h5_dir), tmp_path / "b", progress=False)
    convert(str(pythia_h5_dir), tmp_path / "c", progress=False, rows_per_task=37)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    for split in S.SPLITS:
        keys_a = set(_read(tmp_path / "a", split)["jet_key"])
        assert keys_a == set(_read(tmp_path / "c", split)["jet_key"]), split
    assert 0.7 < sum(a.counts["train"].values()) / a.jets < 0.9


def test_split_assignment_is_a_pure_function_of_the_key():
    keys = jet_keys("some_file.h5", np.arange(100_000))
    assert np.array_equal(keys, jet_keys("some_file.h5", np.arange(100_000)))
    assert not np.array_equal(keys, jet_keys("other_file.h5", np.arange(100_000)))
    split = assign_splits(keys, {"train": 0.6, "test": 0.3, "val": 0.1})
    np.testing.assert_allclose(np.bincount(split, minlength=3) / len(keys), [0.6, 0.3, 0.1], atol=0.01)


def test_other_particle_counts_and_pdgid(pythia_h5_dir, tmp_path):
    raw = _h5(pythia_h5_dir / "w.h5")
    pn = _names(raw[hls4ml.PARTICLE_NAMES])
    cons = raw[hls4ml.CONSTITUENTS][:, :30]
    pid = np.where(np.arange(30)[None, :] % 2 == 0, 211.0, 22.0) * (cons[:, :, pn.index("j1_pt")] > 0)
    raw[hls4ml.CONSTITUENTS] = np.concatenate([cons, pid[:, :, None].astype(np.float32)], axis=2)
    raw[hls4ml.PARTICLE_NAMES] = np.array([n.encode() for n in pn + ["j1_pdgid"]])
    _write_h5(tmp_path / "w30.h5", raw)
    convert(str(tmp_path / "w30.h5"), tmp_path / "out", progress=False)
    meta = S.read_meta(tmp_path / "out")
    assert meta.n_particles == 30
    assert meta.feature_names[-5:] == ["is_electron", "is_muon", "is_photon", "is_charged_hadron",
                                       "is_neutral_hadron"]
    df = _read(tmp_path / "out")
    feats = np.stack([np.frombuffer(v, "<f4") for v in df["features"]]).reshape(len(df), 30, -1)
    n = df["n_particles"].to_numpy()
    real = np.arange(30)[None, :] < n[:, None]
    charged, photon = feats[:, :, -2], feats[:, :, -3]
    assert np.all(charged[real][::1] + photon[real] == 1) and np.all(charged[~real] == 0)
    assert np.all(charged[:, 0][n > 0] == 1) and np.all(photon[:, 1][n > 1] == 1)
    # --max-particles keeps the leading particles of a larger file
    convert(str(pythia_h5_dir / "z.h5"), tmp_path / "z20", progress=False, max_particles=20)
    assert S.read_meta(tmp_path / "z20").n_particles == 20


# --------------------------------------------------------------------------------------------------------
SUBSTRUCTURE = {"jet_mass_sd": "j_mass_mmdt", "jet_tau1": "j_tau1_b1", "jet_tau2": "j_tau2_b1",
                "jet_tau3": "j_tau3_b1", "jet_tau21": "j_tau21_b1", "jet_tau32": "j_tau32_b1"}


def _without(raw: dict, columns) -> dict:
    jn = _names(raw[hls4ml.JET_NAMES])
    keep = [i for i, n in enumerate(jn) if n not in columns]
    return {**raw, hls4ml.JETS: raw[hls4ml.JETS][:, keep], hls4ml.JET_NAMES: raw[hls4ml.JET_NAMES][keep]}


def _without_substructure(raw: dict) -> dict:
    return _without(raw, set(SUBSTRUCTURE.values()))


def test_substructure_columns_round_trip_into_parquet_and_batches(jet_dataset, pythia_h5_dir, tiny_config):
    from ucluster.data.loader import JetStream, has_substructure

    meta = S.read_meta(jet_dataset)
    assert meta.substructure_columns == list(S.SUBSTRUCTURE_COLUMNS) == list(SUBSTRUCTURE)
    schema = pq.read_schema(S.split_files(jet_dataset, "train")[0])
    assert all(schema.field(c).type == pa.float32() for c in SUBSTRUCTURE)
    df = _read(jet_dataset)
    for source, rows in df.groupby("source_file"):
        raw = _h5(pythia_h5_dir / source)
        jn = _names(raw[hls4ml.JET_NAMES])
        file_rows = rows["source_row"].to_numpy()
        for column, name in SUBSTRUCTURE.items():
            np.testing.assert_array_equal(rows[column].to_numpy(), raw[hls4ml.JETS][file_rows, jn.index(name)])
    by_key = df.set_index("jet_key")
    assert has_substructure(jet_dataset)
    batch = next(JetStream(tiny_config, "test").eval_batches(4096))
    valid = batch["valid"] > 0
    assert valid.sum() < len(valid)  # one padded batch: the padding covers the new keys too
    for key, column in (("mass_sd", "jet_mass_sd"), ("tau21", "jet_tau21"), ("tau32", "jet_tau32")):
        assert batch[key].dtype == np.float32 and len(batch[key]) == len(valid) and np.all(batch[key][~valid] == 0)
        np.testing.assert_array_equal(batch[key][valid], by_key.loc[batch["key"][valid], column].to_numpy())


def test_files_without_substructure_still_convert_and_load(pythia_h5_dir, tmp_path, tiny_config):
    from ucluster.data.loader import JetStream, has_substructure

    for kind in ("w", "t"):
        _write_h5(tmp_path / f"{kind}.h5", _without_substructure(_h5(pythia_h5_dir / f"{kind}.h5")))
    out = tmp_path / "old.parquet"
    convert([str(tmp_path / "w.h5"), str(tmp_path / "t.h5")], out, progress=False)
    assert S.read_meta(out).substructure_columns == []
    assert not set(SUBSTRUCTURE) & set(pq.read_schema(S.split_files(out, "train")[0]).names)
    # a dataset converted before the field existed: no key in its metadata
    meta_path = out / S.META_FILE
    text = json.loads(meta_path.read_text())
    del text["substructure_columns"]
    meta_path.write_text(json.dumps(text))
    assert S.read_meta(out).substructure_columns == [] and not has_substructure(out)
    tiny_config.data.path, tiny_config.data.classes = str(out), ["w", "t"]
    # the default target bins the hybrid mass, which needs m_SD: one line naming the dataset and what to do
    with pytest.raises(S.DatasetError, match=r"old.parquet: model.target=mass_hybrid_bins needs the soft-drop "
                                             r"mass column 'jet_mass_sd'.*--model.target mass_bins"):
        next(JetStream(tiny_config, "train").eval_batches(64))
    # a reader that needs no target (baselines, studies) reads it with the default config
    assert "target" not in next(JetStream(tiny_config, "train", targets=False).eval_batches(64))
    tiny_config.model.target = "mass_bins"  # the paper's target reads the jet mass alone
    batch = next(JetStream(tiny_config, "train").eval_batches(64))
    assert "mass" in batch and not {"mass_sd", "tau21", "tau32"} & set(batch)


def test_ratios_a_file_lacks_are_computed_from_the_taus(pythia_h5_dir, tmp_path):
    """The public hls4ml files store j_tau32_b1 but no j_tau21_b1: the converter derives the ratio."""
    raw = _h5(pythia_h5_dir / "t.h5")
    _write_h5(tmp_path / "t.h5", _without(raw, {"j_tau21_b1", "j_tau32_b1"}))
    convert(str(tmp_path / "t.h5"), tmp_path / "out", progress=False)
    df = _read(tmp_path / "out").sort_values("source_row")
    jn = _names(raw[hls4ml.JET_NAMES])
    stored = raw[hls4ml.JETS][df["source_row"].to_numpy()]
    for column in ("jet_tau21", "jet_tau32"):
        np.testing.assert_allclose(df[column], stored[:, jn.index(SUBSTRUCTURE[column])], rtol=1e-5)


def _corrupt(kind: str, src: Path, dst: Path) -> Path:
    raw = _h5(src)
    if kind == "missing_dataset":
        raw.pop(hls4ml.JETS)
    elif kind == "missing_feature":
        pn = _names(raw[hls4ml.PARTICLE_NAMES])
        keep = [i for i, n in enumerate(pn) if n != "j1_etarel"]
        raw[hls4ml.CONSTITUENTS] = raw[hls4ml.CONSTITUENTS][:, :, keep]
        raw[hls4ml.PARTICLE_NAMES] = raw[hls4ml.PARTICLE_NAMES][keep]
    elif kind == "missing_label":
        jn = _names(raw[hls4ml.JET_NAMES])
        raw[hls4ml.JET_NAMES] = np.array([b"j_other" if n == "j_t" else n.encode() for n in jn])
    elif kind == "wrong_rank":
        raw[hls4ml.CONSTITUENTS] = raw[hls4ml.CONSTITUENTS].reshape(len(raw[hls4ml.JETS]), -1)
    elif kind == "names_mismatch":
        raw[hls4ml.PARTICLE_NAMES] = raw[hls4ml.PARTICLE_NAMES][:-1]
    elif kind == "n_mismatch":
        raw[hls4ml.JETS] = raw[hls4ml.JETS][:-3]
    elif kind == "nan":
        raw[hls4ml.CONSTITUENTS][150, 2, 5] = np.nan
    elif kind == "inf_jet":
        raw[hls4ml.JETS][7, 0] = np.inf
    elif kind == "no_substructure":  # an older simulated file next to ones that carry the columns
        raw = _without_substructure(raw)
    elif kind == "nan_substructure":
        raw[hls4ml.JETS][9, _names(raw[hls4ml.JET_NAMES]).index("j_tau2_b1")] = np.nan
    elif kind == "no_jets":
        raw[hls4ml.CONSTITUENTS] = raw[hls4ml.CONSTITUENTS][:0]
        raw[hls4ml.JETS] = raw[hls4ml.JETS][:0]
    if kind == "truncated":
        data = src.read_bytes()
        dst.write_bytes(data[: len(data) // 2])
    elif kind == "not_hdf5":
        dst.write_text("j_pt,j_mass\n1000,80\n")
    elif kind == "empty":
        dst.write_bytes(b"")
    else:
        _write_h5(dst, raw)
    return dst


BAD_INPUTS = {
    "missing_dataset": "missing dataset 'jets'",
    "missing_feature": "particle feature 'j1_etarel' missing",
    "missing_label": "jet feature 'j_t' missing",
    "wrong_rank": "rank 2, expected 3",
    "names_mismatch": "features but 'particleFeatureNames' names",
    "n_mismatch": "jets in 'jetConstituentList' but",
    "nan": "NaN/inf in 'jetConstituentList' feature 'j1_pt' at row 150",
    "inf_jet": "NaN/inf in jet feature 'j_pt' at row 7",
    "no_substructure": "jet feature 'j_mass_mmdt' missing from 'jetFeatureNames' while",
    "nan_substructure": "NaN/inf in jet feature 'j_tau2_b1' at row 9",
    "no_jets": "holds no jets",
    "truncated": "truncated or corrupt",
    "not_hdf5": "not an HDF5 file",
    "empty": "empty file",
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_is_one_line_error_and_output_untouched(kind, pythia_h5_dir, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(pythia_h5_dir / "z.h5", inputs / "a_good.h5")
    bad = _corrupt(kind, pythia_h5_dir / "w.h5", inputs / "b_bad.h5")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(ConversionError) as err:
        convert(str(inputs), out, overwrite=True, progress=False, rows_per_task=100)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and BAD_INPUTS[kind] in message, message
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no temporary directory left


def test_existing_output_is_refused_and_cli_reports_one_line(pythia_h5_dir, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    code = job.main(["--input", str(pythia_h5_dir), "--output", str(out), "--local"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "already exists" in err and "\n" not in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert job.main(["--input", str(tmp_path / "nothing*.h5"), "--output", str(tmp_path / "x"), "--local"]) == 2
    assert "matches no file" in capsys.readouterr().err


def test_spark_round_trip_matches_local_conversion(spark, pythia_h5_dir, jet_dataset, tmp_path):
    out = tmp_path / "spark.parquet"
    summary = convert(str(pythia_h5_dir), out, spark=spark, row_group_size=64, progress=False)
    assert summary.counts == S.read_meta(jet_dataset).counts
    for split in S.SPLITS:
        for a, b in zip(S.split_files(out, split), S.split_files(jet_dataset, split), strict=True):
            assert a.read_bytes() == b.read_bytes()
    df = spark.read.parquet(str(out))
    assert df.count() == 600
    by_split = {r["split"]: r["count"] for r in df.groupBy("split").count().collect()}
    assert by_split == {s: sum(c.values()) for s, c in summary.counts.items()}
    row = df.filter(df.split == "train").select("features", "n_particles").first()
    meta = S.read_meta(out)
    assert len(row["features"]) == 100 * meta.n_features * 4  # float32 bytes
    feats = np.frombuffer(row["features"], "<f4").reshape(100, meta.n_features)
    assert np.all(feats[row["n_particles"]:] == 0) and np.all(feats[: row["n_particles"], 2] != 0)
