"""The Optuna tuner end to end on local Spark (two tiny real trainings), and its input validation."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from jobs import tune as tune_job
from ucluster.config import load_config
from ucluster.tune import SpaceError, TuneError, TuneOptions, load_space, parse_space, tune
from ucluster.tune.halving import promotable, rung_budgets
from ucluster.tune.tuner import write_new

SPACE = {"params": {
    "train.beta": {"low": 1.0, "high": 20.0, "log": True},
    "train.lr": {"low": 5.0e-4, "high": 3.0e-3, "log": True},
    "train.pretrain_epochs": {"low": 0.3, "high": 0.4, "fraction_of": "train.epochs"},  # -> 1 of 3 epochs
    "model.latent_dim": {"choices": [8, 16]},
    "model.k": {"low": 4, "high": 8},
    "model.mass_bins": {"low": 4, "high": 10, "when": {"model.target": ["mass_bins", "mass_hybrid_bins"]}},
    "data.mass_max": {"low": 200.0, "high": 300.0},
}}


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def files(tiny_config, tmp_path):
    base, space = tmp_path / "base.yaml", tmp_path / "space.yaml"
    base.write_text(tiny_config.to_yaml())
    space.write_text(yaml.safe_dump(SPACE))
    return base, space


def test_two_trials_on_spark_nested_runs_halving_and_best_yaml(spark, tiny_config, files, tmp_path, capsys):
    base, space = files
    out, conf = tmp_path / "tune", tmp_path / "conf" / "best.yaml"
    # 3 epochs, 1 pretraining: rung 0 trains both trials 2 epochs, only the better one resumes for the 3rd.
    rc = tune_job.main(["--config", str(base), "--space", str(space), "--out", str(out), "--trials", "2",
                        "--parallel", "2", "--rungs", "2", "--reduction-factor", "2", "--write-conf", str(conf)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "best: trial" in printed.out and "COMPLETE" in printed.out

    rows = {r["number"]: r for r in json.loads((out / "trials.json").read_text())}
    assert sorted(rows) == [0, 1]
    states = sorted(r["state"] for r in rows.values())
    assert states in (["COMPLETE", "PRUNED"], ["COMPLETE", "COMPLETE"]), rows  # both go on only on a tie
    for r in rows.values():
        assert r["epochs"] == (3 if r["state"] == "COMPLETE" else 2)
        assert 0 < r["test_cluster_acc"] <= 1 and r["params"]["train.pretrain_epochs"] == 1
        assert 0 < r["val_cluster_acc"] <= 1  # the objective: chosen on the validation split

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    parent = next(r for r in client.search_runs([client.get_experiment_by_name(tiny_config.run.experiment)
                                                 .experiment_id]) if r.data.tags.get("ucluster.kind") == "tune")
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2
    by_trial = {int(c.data.tags["ucluster.tune.trial"]): c for c in children}
    for number, child in by_trial.items():
        row = rows[number]
        assert child.info.run_id == row["run_id"] and child.info.status == "FINISHED"
        assert child.data.tags["ucluster.tune.state"] == row["state"]
        assert float(child.data.params["train.beta"]) == pytest.approx(row["params"]["train.beta"])
        assert child.data.params["model.latent_dim"] == str(row["params"]["model.latent_dim"])
        # the row holds the figures of the model the trial produced (the epoch selected on val): its final_*
        assert child.data.metrics["final_val_cluster_acc"] == pytest.approx(row["val_cluster_acc"])
        assert child.data.metrics["final_test_cluster_acc"] == pytest.approx(row["test_cluster_acc"])
        assert "test_nmi" in child.data.metrics and "test_ari" in child.data.metrics
        # a promoted trial resumed its own run: one history, clustering epochs 1..(epochs-1)
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_cluster_acc")]
        assert sorted(steps) == list(range(1, row["epochs"]))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best.yaml", "trials.json", "search_space.yaml", "base_config.yaml"} <= artifacts
    logged = yaml.safe_load(Path(client.download_artifacts(parent.info.run_id, "search_space.yaml", str(tmp_path)))
                            .read_text())
    assert logged["params"]["model.mass_bins"]["when"] == SPACE["params"]["model.mass_bins"]["when"]  # any-of list

    best = max((r for r in rows.values() if r["state"] == "COMPLETE"), key=lambda r: r["val_cluster_acc"])
    assert parent.data.tags["ucluster.tune.best_trial"] == str(best["number"])
    cfg = load_config(out / "best.yaml")
    assert cfg.train.beta == pytest.approx(best["params"]["train.beta"]) and cfg.train.epochs == 3
    assert cfg.model.k == best["params"]["model.k"] and cfg.model.mass_bins == best["params"]["model.mass_bins"]
    assert cfg.run == tiny_config.run and cfg.data.path == str(tiny_config.data.path)
    assert conf.read_text() == (out / "best.yaml").read_text()

    # --write-conf never replaces a file without --overwrite, and says so before any trial starts
    rc = tune_job.main(["--config", str(base), "--space", str(space), "--out", str(out), "--trials", "1",
                        "--write-conf", str(conf)])
    assert rc == 2 and "already exists (pass --overwrite" in capsys.readouterr().err
    assert len(json.loads((out / "trials.json").read_text())) == 2


def test_a_dataset_without_validation_jets_is_refused(spark, tiny_config, tmp_path):
    """The search chooses on the val split; without one it would have to choose on the test split."""
    src = Path(tiny_config.data.path)
    data = tmp_path / "no_val.parquet"
    shutil.copytree(src, data, ignore=lambda d, names: [n for n in names if n == "split=val"])
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, path=str(data)))
    space = parse_space(SPACE, cfg)
    with pytest.raises(TuneError, match="no validation jets pass the selection") as exc:
        tune(cfg, space, TuneOptions(out=str(tmp_path / "tune"), trials=1, parallel=1), spark=spark,
             echo=lambda s: None)
    assert str(exc.value).startswith(str(data)) and "\n" not in str(exc.value)
    assert not (tmp_path / "tune" / "trials.json").exists()


def test_failed_trials_are_recorded_with_their_reason(spark, tiny_config, tmp_path):
    out = tmp_path / "tune"
    # an impossible sampled combination fails the trial at once, without a Spark task
    invalid = parse_space({"params": {"data.mass_max": {"low": 1.0, "high": 5.0}}}, tiny_config)
    with pytest.raises(TuneError, match=r"no trial completed \(0 pruned, 2 failed\)"):
        tune(tiny_config, invalid, TuneOptions(out=str(out), trials=2, parallel=2), spark=spark, echo=lambda s: None)
    rows = json.loads((out / "trials.json").read_text())
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]
    assert all("data.mass_min must be below data.mass_max" in r["error"] for r in rows)
    # a trial that fails inside its Spark task (here: the trainer's preflight) reports the trainer's message
    too_big = parse_space({"params": {"train.batch_size": {"choices": [100000]}}}, tiny_config)
    with pytest.raises(TuneError, match="no trial completed"):
        tune(tiny_config, too_big, TuneOptions(out=str(out), trials=1, parallel=1), spark=spark, echo=lambda s: None)
    row = json.loads((out / "trials.json").read_text())[-1]
    assert row["number"] == 2 and row["state"] == "FAIL" and "fewer than one batch per worker" in row["error"]
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name(tiny_config.run.experiment)
    assert {r.info.status for r in client.search_runs([exp.experiment_id])} == {"FAILED"}  # the two parents


def _error(argv: list[str], capsys) -> str:
    assert tune_job.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_bad_inputs_fail_in_one_line_before_any_trial(tiny_config, files, tmp_path, capsys):
    base, space = files
    out = tmp_path / "tune"
    common = ["--config", str(base), "--out", str(out)]
    assert "dataset not found" in _error(common + ["--space", str(space), "--data", str(tmp_path / "none")], capsys)
    assert "search-space file not found" in _error(common + ["--space", str(tmp_path / "none.yaml")], capsys)
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  train.bta: {low: 1, high: 2}\n")
    assert _error(common + ["--space", str(bad)], capsys) == (
        f"error: {bad}: unknown field 'train.bta' (did you mean 'beta'?)")
    bad.write_text("params: [\n")
    assert "not valid YAML" in _error(common + ["--space", str(bad)], capsys)
    assert "--trials must be an integer >= 1" in _error(common + ["--space", str(space), "--trials", "0"], capsys)
    assert "expected int, got 'x'" in _error(common + ["--space", str(space), "--train.batch_size", "x"], capsys)
    assert not out.exists() or not (out / "trials").exists()

    opts = TuneOptions(out=str(out), storage="not-a-url")
    with pytest.raises(TuneError, match="cannot open the Optuna study"):
        from ucluster.tune.tuner import _open_study

        _open_study(opts, out, 0)


@pytest.mark.parametrize("params, message", [
    ({"train.bta": {"low": 1, "high": 2}}, "unknown field 'train.bta' (did you mean 'beta'?)"),
    ({"trian.beta": {"low": 1, "high": 2}}, "unknown section 'trian' (did you mean 'train'?)"),
    ({"train.epochs": {"low": 1, "high": 9}}, "params.train.epochs: cannot be searched"),
    ({"run.output_dir": {"choices": ["a"]}}, "params.run.output_dir: run.* fields are set by the tuner"),
    ({"model.k": {"low": 1.5, "high": 4}}, "integer field, 'low' must be an integer, got 1.5"),
    ({"train.lr": {"low": 0.0, "high": 1.0, "log": True}}, "a log range needs low > 0"),
    ({"train.lr": {"low": 1.0, "high": 0.1}}, "low 1.0 is above high 0.1"),
    ({"train.lr": {"low": 0.1, "high": 1.0, "lg": True}}, "unknown key 'lg'"),
    ({"train.lr": {"low": 0.1}}, "needs both 'low' and 'high'"),
    ({"train.lr": [0.1, 1.0]}, "expected a mapping"),
    ({"train.batch_size": {"choices": [32, "big"]}}, "field 'train.batch_size': expected int, got 'big'"),
    ({"train.batch_size": {"choices": []}}, "'choices' must be a non-empty list"),
    ({"model.target": {"low": 1, "high": 2}}, "'model.target' is not numeric"),
    ({"model.mass_bins": {"low": 4, "high": 8, "when": {"model.targt": "x"}}}, "unknown field 'model.targt'"),
    ({"train.pretrain_epochs": {"low": 0.1, "high": 0.5, "fraction_of": "data.classes"}}, "needs numeric fields"),
])
def test_space_validation_names_the_parameter(tiny_config, params, message):
    with pytest.raises(SpaceError) as exc:
        parse_space({"params": params}, tiny_config, "space.yaml")
    assert str(exc.value).startswith("space.yaml: ") and message in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(SpaceError, match="unknown top-level key 'param'"):
        parse_space({"param": params}, tiny_config, "space.yaml")


def test_shipped_space_loads_and_samples_valid_configs():
    import optuna

    base = load_config("conf/demo.yaml")
    space = load_space("conf/tune.yaml", base)
    wanted = {"train.beta", "train.alpha_start", "train.alpha_step", "train.gamma", "train.lr", "train.batch_size",
              "model.latent_dim", "model.k", "train.pretrain_epochs", "model.mass_bins", "data.mass_min",
              "data.mass_max", "data.pt_min", "data.pt_max"}
    assert wanted <= {p.name for p in space.params}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        overrides, cfg = space.sample(study.ask(), base)
        assert 2 <= cfg.train.pretrain_epochs <= 6 and cfg.train.epochs == base.train.epochs
        assert cfg.flat()["train.lr"] == overrides["train.lr"]
    # a conditional parameter is only sampled when its condition holds
    truth = load_config("conf/demo.yaml", {"model.target": "truth"})
    overrides, cfg = space.sample(study.ask(), truth)
    assert "model.mass_bins" not in overrides and cfg.model.mass_bins == truth.model.mass_bins
    # ... and a list under `when` is any of its values: the default's hybrid bins and the paper's mass bins
    for target in ("mass_hybrid_bins", "mass_bins"):
        other = load_config(None, {"model.target": target})
        overrides, cfg = load_space("conf/tune.yaml", other).sample(study.ask(), other)
        assert cfg.model.target == target and cfg.model.mass_bins == overrides["model.mass_bins"]
        assert "model.bin_smoothing" in overrides
    with pytest.raises(SpaceError, match="params.model.k: when model.target: an empty list matches nothing"):
        parse_space({"params": {"model.k": {"low": 5, "high": 9, "when": {"model.target": []}}}}, base, "s.yaml")


def test_trials_are_scored_on_the_base_selection(tiny_config, tmp_path):
    """A trial that samples another training window still evaluates the base config's val/test jets."""
    import optuna

    from ucluster.tune.tuner import _trial_run_config

    space = parse_space({"params": {"data.mass_min": {"low": 40.0, "high": 50.0},
                                    "data.pt_max": {"low": 1150.0, "high": 1200.0}}}, tiny_config)
    base = _trial_run_config(tiny_config, tmp_path, 0, "", "")
    d = tiny_config.data
    trial = optuna.create_study().ask()
    _, cfg = space.sample(trial, base)
    assert 40.0 <= cfg.data.mass_min <= 50.0 and cfg.data.pt_max <= 1200.0
    assert cfg.data.eval_window == [d.mass_min, d.mass_max, d.pt_min, d.pt_max]


def test_rung_budgets_and_promotion_rule():
    assert rung_budgets(27, 0, 4, 3) == [1, 3, 9, 27]
    assert rung_budgets(10, 4, 2, 3) == [5, 10]  # rung 0 ends after one clustering epoch at the earliest
    assert rung_budgets(3, 1, 2, 2) == [2, 3]
    assert rung_budgets(3, 3, 2, 2) == [3]  # no clustering epoch before the end: one rung
    assert rung_budgets(10, 2, 1, 3) == [10]
    assert promotable(0.5, [0.5], 3)  # the first at a rung goes on (as in Optuna)
    assert not promotable(0.4, [0.5, 0.4], 2) and promotable(0.5, [0.5, 0.4], 2)
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert [v for v in values if promotable(v, values, 3)] == [0.5, 0.6]
    assert not promotable(float("nan"), [0.1, float("nan")], 2)


def test_write_new_never_replaces_without_overwrite(tmp_path):
    path = tmp_path / "conf" / "best.yaml"
    write_new(path, "a: 1\n")
    with pytest.raises(TuneError, match="already exists"):
        write_new(path, "a: 2\n")
    assert path.read_text() == "a: 1\n"
    write_new(path, "a: 3\n", overwrite=True)
    assert path.read_text() == "a: 3\n" and [p.name for p in path.parent.iterdir()] == ["best.yaml"]


def test_logged_and_written_configs_mask_tracking_credentials():
    """base_config.yaml (logged to the parent run) and best.yaml / --write-conf (logged, and maybe committed) are
    records: a run.tracking_uri with credentials is masked in both, and best.yaml says so and still loads."""
    from ucluster.config import config_from_dict
    from ucluster.tune.tuner import _best_yaml

    secret = "s3cr3t-t0ken"
    cfg = load_config(None, {"run.tracking_uri": f"https://alice:{secret}@mlflow.example.com/x"})
    base = cfg.to_yaml(redacted=True)  # what the tuner logs as base_config.yaml
    assert secret not in base and "alice" not in base
    assert yaml.safe_load(base)["run"]["tracking_uri"] == "https://***@mlflow.example.com/x"
    best = {"number": 3, "epochs": 3, "run_id": "abc", "val_cluster_acc": 0.5}
    text = _best_yaml(cfg, best, "study", "parent")
    assert secret not in text and "alice" not in text and "credentials masked" in text
    assert config_from_dict(yaml.safe_load(text)).run.tracking_uri == "https://***@mlflow.example.com/x"
    plain = load_config(None, {"run.tracking_uri": "http://127.0.0.1:5000"})
    assert "credentials masked" not in _best_yaml(plain, best, "study", "parent")
    assert yaml.safe_load(_best_yaml(plain, best, "study", "parent"))["run"]["tracking_uri"] == "http://127.0.0.1:5000"


def test_logged_search_space_keeps_zero_bounds_and_any_of_lists():
    """search_space.yaml (logged with every tuning run) says what was searched: a bound of 0.0 is a bound, and an
    any-of `when` is written back as the list it was read from."""
    from ucluster.tune.tuner import _param_dict

    params = {"train.gamma": {"low": 0.0, "high": 4.0},
              "model.mass_bins": {"low": 5, "high": 60, "when": {"model.target": ["mass_bins", "mass_hybrid_bins"]}}}
    space = parse_space({"params": params}, load_config(None))
    logged = yaml.safe_load(yaml.safe_dump({p.name: _param_dict(p) for p in space.params}))
    assert (logged["train.gamma"]["low"], logged["train.gamma"]["high"]) == (0.0, 4.0)
    assert logged["model.mass_bins"]["when"] == params["model.mass_bins"]["when"]
