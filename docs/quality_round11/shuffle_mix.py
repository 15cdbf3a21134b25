"""Round 11: how well each shuffle mixes the classes at the end of an epoch, from the labels of the study sample's
training row groups alone (no training). The round-8 sample (/tmp/jets.parquet) has 23 row groups of 4 096 jets,
each of one class. Per epoch (a random row-group order), the labels of the 89 batches of 1 024 are produced as
each shuffle would produce them: the block shuffle of commit 1c5a8a9 (fill 65 536 jets, shuffle, empty, repeat;
the last block is what is left), blocks of equal size, the streaming buffer of commit 8f5b129, and the whole
shard at once. Then the same for a shard ten times larger (the row groups repeated), in windows of 24 batches
anywhere in the epoch.

    .venv/bin/python docs/quality_round11/shuffle_mix.py > docs/quality_round11/shuffle_mix.log
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ucluster.config import load_config  # noqa: E402
from ucluster.data import schema as S  # noqa: E402
from ucluster.data.loader import JetStream, _Reservoir  # noqa: E402

B, TOP = 1024, 2
cfg = load_config(None, {"data.path": "/tmp/jets.parquet"})
stream = JetStream(cfg, "train", 0, 1, S.read_meta(cfg.data.path))
groups = [stream._read(ref)["label"].astype(int) for ref in stream.refs]  # noqa: SLF001
print(f"{len(groups)} row groups; class of each: {[int(np.bincount(g).argmax()) for g in groups]}")
rng = np.random.default_rng(0)


def block(order: np.ndarray, capacity: int, equal: bool = False) -> np.ndarray:
    if equal:
        total = sum(len(groups[i]) for i in order)
        capacity = -(-total // -(-total // capacity))
    out, held = [], []
    for i in order:
        held.append(groups[i])
        if sum(map(len, held)) >= capacity:
            out.append(rng.permutation(np.concatenate(held)))
            held = []
    if held:
        out.append(rng.permutation(np.concatenate(held)))
    return np.concatenate(out)


def streaming(order: np.ndarray, capacity: int) -> np.ndarray:
    """The loader's own streaming buffer (``_Reservoir``, as ``JetStream.batches`` drives it), fed the labels."""
    buf, out = _Reservoir(capacity), []
    for i in order:
        buf.add({"mass": groups[i]})
        while len(buf) >= capacity:
            out.append(buf.draw(B, rng)["mass"])
    while len(buf) >= B:
        out.append(buf.draw(B, rng)["mass"])
    return np.concatenate(out)


SHUFFLES = {"block 65536 (before)": lambda o: block(o, 65536), "equal blocks": lambda o: block(o, 65536, True),
            "streaming 65536 (now)": lambda o: streaming(o, 65536), "whole shard": lambda o: block(o, 10**9)}
steps = sum(map(len, groups)) // B
tails: dict[str, list] = {k: [] for k in SHUFFLES}
for _ in range(200):
    order = rng.permutation(len(groups))
    for name, shuffle in SHUFFLES.items():
        tails[name].append((shuffle(order)[: B * steps][-24 * B:] == TOP).mean())
share = np.mean(np.concatenate(groups) == TOP)
print(f"top share of the last 24 of {steps} batches, 200 epochs (whole sample {share:.3f}):")
for name, v in tails.items():
    print(f"  {name:<22} std {np.std(v):.3f}  min {np.min(v):.3f}  max {np.max(v):.3f}")

groups = groups * 10
steps = sum(map(len, groups)) // B
SHUFFLES = {"block 65536": lambda o: block(o, 65536), "streaming 65536": lambda o: streaming(o, 65536),
            "streaming 262144": lambda o: streaming(o, 262144)}
windows: dict[str, list] = {k: [] for k in SHUFFLES}
for _ in range(20):
    order = rng.permutation(len(groups))
    for name, shuffle in SHUFFLES.items():
        x = shuffle(order)[: B * steps].reshape(steps, B) == TOP
        windows[name].append(np.std([x[i:i + 24].mean() for i in range(0, steps - 24, 12)]))
print(f"a shard ten times larger ({len(groups)} row groups): top share of 24-batch windows, std within an epoch "
      "(mean over 20 epochs):")
for name, v in windows.items():
    print(f"  {name:<22} {np.mean(v):.3f}")
