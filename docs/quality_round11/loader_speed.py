"""Round 11: the streaming shuffle's throughput next to the block shuffle it replaced, in one run on one machine.

Both loaders (this tree's, and ``git show 1c5a8a9:ucluster/data/loader.py`` imported from a temporary file) read
the same shard (the round-8 study sample at /tmp/jets.parquet: 91 402 training jets, P = 100) into epochs of
batches of 1 024 with the default 65 536-jet buffer, one reader thread; the page cache is warmed first and each
loader is timed over 3 epochs, alternating.

    .venv/bin/python docs/quality_round11/loader_speed.py > docs/quality_round11/loader_speed.log
"""

import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from ucluster.config import load_config  # noqa: E402
from ucluster.data import loader as streaming  # noqa: E402
from ucluster.data import schema as S  # noqa: E402

source = subprocess.run(["git", "-C", str(REPO), "show", "1c5a8a9:ucluster/data/loader.py"], check=True,
                        capture_output=True, text=True).stdout
with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
    f.write(source)
spec = importlib.util.spec_from_file_location("loader_block", f.name)
block = importlib.util.module_from_spec(spec)
sys.modules["loader_block"] = block  # dataclasses look their module up there
spec.loader.exec_module(block)

cfg = load_config(None, {"data.path": "/tmp/jets.parquet", "data.reader_threads": 1})
meta = S.read_meta(cfg.data.path)
B = 1024
loaders = {"block (1c5a8a9)": block.JetStream(cfg, "train", 0, 1, meta),
           "streaming (now)": streaming.JetStream(cfg, "train", 0, 1, meta)}
steps = loaders["streaming (now)"].selected_rows() // B
for stream in loaders.values():
    sum(1 for _ in stream.batches(B, steps, epoch=0))  # warm the page cache
seconds = {name: 0.0 for name in loaders}
for epoch in (1, 2, 3):
    for name, stream in loaders.items():
        t0 = time.perf_counter()
        sum(len(b["mass"]) for b in stream.batches(B, steps, epoch=epoch))
        seconds[name] += time.perf_counter() - t0
for name, s in seconds.items():
    print(f"{name:<16} {3 * steps * B / s:9.0f} jets/s ({steps} batches of {B} per epoch, 3 epochs)")
ratio = seconds["block (1c5a8a9)"] / seconds["streaming (now)"]
print(f"streaming / block throughput: {ratio:.2f}")
