"""The anomaly-mode Databricks notebook: source format, and every parameter from a widget on Databricks."""

from __future__ import annotations

from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[2] / "jobs" / "notebooks" / "ucluster_anomaly.py"


class _Widgets:
    def __init__(self, values: dict[str, str]):
        self.values, self.defaults = values, {}

    def text(self, name: str, default: str, label: str) -> None:
        self.defaults[name] = default

    def get(self, name: str) -> str:
        return self.values.get(name, self.defaults[name])


def test_anomaly_notebook_format_and_widgets():
    source = NOTEBOOK.read_text()
    assert source.startswith("# Databricks notebook source\n")
    cells = source.split("\n# COMMAND ----------\n")
    assert len(cells) >= 6
    fake = type("DBUtils", (), {"widgets": _Widgets({"signal_fraction": "0.01", "overrides": '{"train.epochs": 4}'})})()
    scope: dict = {"dbutils": fake, "__file__": str(NOTEBOOK)}
    for cell in cells[:3]:  # set-up and parameters only
        exec(compile(cell, str(NOTEBOOK), "exec"), scope)
    assert set(fake.widgets.defaults) >= {"input", "workdir", "config", "overrides", "signal_fraction", "qcd", "wprime"}
    assert scope["SIGNAL_FRACTION"] == 0.01 and scope["OVERRIDES"] == {"train.epochs": 4}
    assert Path(scope["CONFIG"]).name == "anomaly_demo.yaml" and Path(scope["CONFIG"]).is_file()
