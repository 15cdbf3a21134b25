"""A checkpoint writer killed mid-write leaves the previous checkpoint usable (and its temporary file is cleaned
by the next write)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.faults.conftest import REPO, job_env, start_job
from ucluster.train import checkpoint as ckpt

# Writes checkpoints of ~64 MB in a loop, announcing each epoch before it writes; real model/optimizer stand-ins
# are plain objects with .variables of numpy-backed values, as save_checkpoint only calls .numpy() on them.
WRITER = """
import sys, numpy as np
from ucluster.train import checkpoint as ckpt
class V:
    def __init__(self, a): self.a = a
    def numpy(self): return self.a
class M:
    def __init__(self, fill): self.variables = [V(np.full((4096, 4096), fill, np.float32))]
for epoch in range(1000):
    print(epoch, flush=True)
    ckpt.save_checkpoint(sys.argv[1], M(epoch), M(-epoch), {"epoch": epoch})
"""


def test_killed_checkpoint_writer_leaves_the_previous_checkpoint(tmp_path):
    out = tmp_path / "run"
    tmp_glob = ".checkpoint.npz.*.tmp"
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], cwd=REPO, env=job_env(),
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline(), proc.stdout.readline()  # epoch 0 is written, epoch 1 is being prepared
        deadline = time.time() + 60
        while not list(ckpt.checkpoint_path(out).parent.glob(tmp_glob)):  # the write of epoch >= 1 has begun
            assert time.time() < deadline and proc.poll() is None
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)  # the process this test started, mid-write
        proc.wait()
        stale = list(ckpt.checkpoint_path(out).parent.glob(tmp_glob))
        assert stale, "the kill did not land during the write"
        state = ckpt.read_state(out)  # the file in place is complete and readable: the previous epoch's
        with np.load(ckpt.checkpoint_path(out)) as data:
            assert (data["model_0000"] == state["epoch"]).all() and (data["optim_0000"] == -state["epoch"]).all()
            assert json.loads(data["state"].tobytes())["format"] == ckpt.FORMAT
        assert os.path.getsize(stale[0]) < os.path.getsize(ckpt.checkpoint_path(out))  # it really was half-written
    # the next writer removes what the killed one left
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], cwd=REPO, env=job_env(),
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline(), proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(ckpt.checkpoint_path(out).parent.glob(".checkpoint.npz.*.tmp"))) <= 1


def _real_checkpoint_bytes(tmp_path) -> bytes:
    """A complete checkpoint as save_checkpoint writes it (the same stand-ins as WRITER, small)."""
    class V:
        def __init__(self, a):
            self.a = a

        def numpy(self):
            return self.a

    class M:
        variables = [V(np.ones((64, 64), np.float32))]

    return ckpt.save_checkpoint(tmp_path / "whole", M(), M(), {"epoch": 0}).read_bytes()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "no state", "empty"])
def test_unreadable_checkpoint_is_one_line_naming_the_file(tmp_path, damage):
    """Whatever is wrong with the file, reading it raises CheckpointError naming it (never a bare zip/JSON error)."""
    path = ckpt.checkpoint_path(tmp_path / "run")
    path.parent.mkdir(parents=True)
    whole = _real_checkpoint_bytes(tmp_path)
    if damage == "garbage":
        path.write_bytes(b"this is not a checkpoint\n" * 10)
    elif damage == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
    elif damage == "no state":
        np.savez(path.open("wb"), model_0000=np.zeros(3))
    else:
        path.write_bytes(b"")
    with pytest.raises(ckpt.CheckpointError, match=r"^.*checkpoint\.npz: unreadable checkpoint \(") as info:
        ckpt.read_state(tmp_path / "run")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_resume_from_a_corrupt_checkpoint_fails_in_one_line(jet_dataset, tmp_path):
    """jobs/train.py --resume on a checkpoint full of garbage: exit 2, one line naming the file and what to do,
    no traceback, before any worker starts."""
    out = tmp_path / "run"
    path = ckpt.checkpoint_path(out)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    job = start_job(jet_dataset, out, "--np", "-1", "--resume")
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 2, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {path}: unreadable checkpoint (") and "--resume cannot continue" in last, last
    assert "Traceback" not in stderr + stdout
    assert not (out / "logs" / "workers").exists()  # refused on the driver: no worker ever started
