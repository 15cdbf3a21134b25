"""Executor loss in the Spark jobs: the Python worker of one task is killed (SIGKILL) while its output is being
written; Spark retries the task (``local[2,8]``: 2 slots, 8 attempts per task) and the result is byte for byte the
output of an undisturbed run (conversion: byte for byte; assignment: the same files with the same schema, rows
and row groups, see :func:`_parquet_contents`), with no temporary file left beside it.

The jobs run as subprocesses; the victim is found among the job's own descendants (never by name alone): in the
conversion, the Python worker that holds a part file of the job's temporary output open; in the assignment (where
the JVM writes the files), a busy Python worker of the job once a task after the first ones has written a part file
under ``_temporary``. The assignment runs (the reference too) with small input splits (:data:`SMALL_SPLITS`): Spark's
own split of this 63 MB dataset is 3 tasks on 2 slots, and the last one often ends before a kill can land.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

from tests.faults.conftest import REPO, job_env
from ucluster import hls4ml

MASTER = "local[2,8]"
PER_JET = (hls4ml.CONSTITUENTS, hls4ml.JETS)
TILES = 50  # the session's 200 real jets per kind, repeated: tasks last long enough to be hit mid-write


@pytest.fixture(scope="module")
def big_h5_dir(pythia_h5_dir, tmp_path_factory):
    """The session's hls4ml files, each repeated TILES times (10 000 jets per file; keys stay distinct by row)."""
    out = tmp_path_factory.mktemp("big_h5")
    for src in sorted(pythia_h5_dir.glob("*.h5")):
        with h5py.File(src, "r") as f, h5py.File(out / src.name, "w") as g:
            for name, ds in f.items():
                data = ds[()]
                g.create_dataset(name, data=np.concatenate([data] * TILES) if name in PER_JET else data)
    return out


def _spark_python_workers(job: subprocess.Popen) -> list[psutil.Process]:
    """The job's PySpark worker processes (children of its ``pyspark.daemon``), never the daemon itself."""
    found = []
    for proc in psutil.Process(job.pid).children(recursive=True):
        try:
            parent = proc.parent()  # None when the parent has gone (or its pid was reused) since the listing
            if parent is not None and "pyspark.daemon" in " ".join(parent.cmdline()):  # forked by the daemon
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _busy(workers: list[psutil.Process], window: float = 0.1) -> list[psutil.Process]:
    """The workers that used CPU over ``window`` seconds (running a task, not idle reused ones), busiest first."""
    def cpu(proc):
        try:
            t = proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return None

    before = {p.pid: cpu(p) for p in workers}
    time.sleep(window)
    used = [(c - before[p.pid], p) for p in workers
            if before[p.pid] is not None and (c := cpu(p)) is not None]
    return [p for u, p in sorted(used, key=lambda u: -u[0]) if u > 0.3 * window]


# Test-only Spark conf for the assignment: ~4 MB input splits (about 17 tasks of ~1.5 s here instead of 3), so that
# tasks are still running in Python when the earlier ones' part files appear. Passed the way ``pyspark`` reads extra
# spark-submit arguments when a plain ``python`` process starts the JVM.
SMALL_SPLITS = {"PYSPARK_SUBMIT_ARGS": "--conf spark.sql.files.maxPartitionBytes=4m pyspark-shell"}

LOST_TASK = re.compile(r"Lost task .*Python worker exited unexpectedly")


class SparkJob:
    """A job subprocess whose stderr is read live, so the test sees Spark report the lost task."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=job_env(PYSPARK_PYTHON=sys.executable, **(env or {})),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self._reader = threading.Thread(target=lambda: self.err.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def lost_tasks(self) -> int:
        return sum(bool(LOST_TASK.search(line)) for line in list(self.err))

    def kill_worker_when(self, pick, timeout: float = 300, max_kills: int = 6) -> list[dict]:
        """SIGKILL the worker ``pick(workers)`` returns, until Spark reports a task lost to it (a worker that has
        just handed back its last batch may die without failing its task: then the next one is hit)."""
        killed: list[dict] = []
        deadline = time.time() + timeout
        while time.time() < deadline and len(killed) < max_kills:
            assert self.proc.poll() is None, f"job ended before a task was lost: {''.join(self.err)[-3000:]}"
            hit = pick(_spark_python_workers(self.proc))
            if hit is None:
                time.sleep(0.005)
                continue
            proc, why = hit
            if proc.pid not in {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}:
                continue  # it exited after being picked
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks it is still the same process (no reused pid)
            except psutil.NoSuchProcess:
                continue
            killed.append({"pid": proc.pid, "why": why})
            seen_by = time.time() + 3  # Spark logs a lost task within a second; an idle victim is just replaced
            while time.time() < seen_by and not self.lost_tasks() and self.proc.poll() is None:
                time.sleep(0.05)
            if self.lost_tasks():
                return killed
        raise AssertionError(f"no task was lost after killing {killed}")

    def wait(self, timeout: float = 600) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(30)
        return code, "".join(self.err)


def _run(cmd: list[str], timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=job_env(PYSPARK_PYTHON=sys.executable, **(env or {})),
                          capture_output=True, text=True, timeout=timeout)


def _files(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _part_files(root: Path) -> set[Path]:
    """The ``part-*`` files under ``root`` now. Spark moves and deletes task-attempt directories while this
    looks (a committed task's files leave ``_temporary``), so a directory that vanishes mid-walk is skipped:
    ``os.walk`` ignores such errors where ``Path.rglob`` raises FileNotFoundError."""
    return {Path(d) / f for d, _, files in os.walk(root) for f in files if f.startswith("part-")}


def _leftovers(parent: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def test_conversion_task_killed_mid_write_is_retried_and_output_is_identical(big_h5_dir, tmp_path):
    args = ["--input", str(big_h5_dir), "--rows-per-task", "10000", "--row-group-size", "256"]
    ref = _run([sys.executable, "-m", "conversion.job", *args, "--output", str(tmp_path / "ref"), "--local"])
    assert ref.returncode == 0, ref.stderr[-2000:]

    out = tmp_path / "out"
    job = SparkJob([sys.executable, "-m", "conversion.job", *args, "--output", str(out), "--master", MASTER])

    def writing_a_part_file(workers):
        for proc in workers:
            try:
                open_parts = [f.path for f in proc.open_files()
                              if f".{out.name}.tmp-" in f.path and f.path.endswith(".parquet")]
            except psutil.Error:
                continue
            if open_parts:
                return proc, open_parts[0]
        return None

    killed = job.kill_worker_when(writing_a_part_file)
    code, stderr = job.wait()
    assert code == 0, stderr[-3000:]
    assert f".{out.name}.tmp-" in killed[-1]["why"]  # it held a part file of the temporary output open
    assert _files(out) == _files(tmp_path / "ref")  # every part file and the metadata, byte for byte
    assert _leftovers(tmp_path, {"ref", "out"}) == []  # no temporary directory beside the output


def _without_uuid(name: str) -> str:
    """``split=test/part-00001-<uuid>.c000.snappy.parquet`` -> ``split=test/part-00001.c000.snappy.parquet``."""
    return re.sub(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "", name)


def _parquet_contents(root: Path) -> dict:
    """Part file name (UUID removed) -> (schema, table, rows per row group) of every Parquet file under ``root``.

    Compared instead of bytes: Spark's Parquet writer (parquet-mr) lists each column chunk's encodings from a hash
    set, so even two undisturbed runs differ in those footer bytes (measured here); every value, the schema, the
    row order and the row-group layout are what the retry must reproduce."""
    import pyarrow.parquet as pq

    out = {}
    for path in sorted(root.rglob("*.parquet")):
        f = pq.ParquetFile(path)
        groups = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
        out[_without_uuid(str(path.relative_to(root)))] = (f.schema_arrow, f.read(), groups)
    return out


def test_assignment_task_killed_mid_write_is_retried_and_output_is_identical(big_h5_dir, trained, tmp_path):
    from conversion.convert import convert

    data = tmp_path / "jets.parquet"
    convert(str(big_h5_dir), data, progress=False, row_group_size=512)
    args = ["--model", str(trained.model_path), "--data", str(data), "--batch-size", "256", "--master", MASTER]
    ref = _run([sys.executable, "-m", "jobs.assign", *args, "--out", str(tmp_path / "ref")], env=SMALL_SPLITS)
    assert ref.returncode == 0, ref.stderr[-2000:]

    out = tmp_path / "out"
    job = SparkJob([sys.executable, "-m", "jobs.assign", *args, "--out", str(out)], env=SMALL_SPLITS)

    seen: set[Path] = set()

    def while_the_output_is_written(workers):
        """Right after a task opened a new part file (its first batch is back from Python, the rest is to come),
        and while a worker is busy: the victim is then most likely in the middle of a task."""
        parts = {p for d in tmp_path.glob(f".{out.name}.tmp-*") for p in _part_files(d / "_temporary")}
        new = parts - seen
        seen.update(parts)
        if not new or len(seen) == len(new):  # nothing new, or the first files: wait for a task that opens later
            return None
        busy = _busy(workers)
        return (busy[0], str(sorted(new)[0])) if busy else None

    job.kill_worker_when(while_the_output_is_written)
    code, stderr = job.wait()
    assert code == 0, stderr[-3000:]
    got, want = _parquet_contents(out), _parquet_contents(tmp_path / "ref")
    assert len(want) > 9  # SMALL_SPLITS took effect: more tasks (part files) than the 9 input files
    assert got.keys() == want.keys()  # the same part files (Spark names them with a per-job UUID)
    for name in want:
        assert got[name] == want[name], name  # same schema, rows in the same order, same row groups
    meta_got = json.loads((out / "_ucluster_assign.json").read_text())
    meta_want = json.loads((tmp_path / "ref" / "_ucluster_assign.json").read_text())
    for record in (meta_got, meta_want):
        del record["created"], record["seconds"]
    assert meta_got == meta_want
    assert not [p for p in out.rglob("*") if "_temporary" in p.name]
    assert _leftovers(tmp_path, {"jets.parquet", "ref", "out"}) == []
