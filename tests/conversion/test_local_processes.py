"""Conversion without Spark in a pool of local processes writes exactly what the one-process conversion writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conversion.convert import convert


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_process_pool_conversion_is_byte_identical_to_serial(pythia_h5_dir, tmp_path):
    serial, pooled = tmp_path / "serial.parquet", tmp_path / "pooled.parquet"
    convert(str(pythia_h5_dir), serial, rows_per_task=150, row_group_size=64, progress=False)
    convert(str(pythia_h5_dir), pooled, rows_per_task=150, row_group_size=64, progress=False, processes=2)
    a, b = _files(serial), _files(pooled)
    assert len([n for n in a if n.endswith(".parquet")]) > 3  # several tasks, so the pool really splits the work
    assert a == b


def test_processes_flag_needs_local(pythia_h5_dir, tmp_path):
    out = tmp_path / "x.parquet"
    proc = subprocess.run([sys.executable, "-m", "conversion.job", "--input", str(pythia_h5_dir), "--output",
                           str(out), "--processes", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("error: --processes must be >= 1 and needs --local (with Spark "
                                                    "the executors are the processes)")
    assert not out.exists()
