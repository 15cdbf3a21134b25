"""Per-worker streaming of a Parquet jet dataset: sharding by row group, selection, shuffling, prefetching.

Each worker opens only the row groups assigned to its rank and holds at most one shuffle buffer plus one
row group in memory, whatever the dataset size. The number of steps per epoch is passed in by the caller
(the minimum over workers), because a Horovod allreduce with unequal step counts hangs.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from ucluster.config import Config
from ucluster.data import schema as S

Batch = dict[str, np.ndarray]
_SMALL_COLUMNS = [S.LABEL, S.JET_MASS, S.JET_PT, S.JET_KEY, S.N_PARTICLES]
# batch key -> optional Parquet column: the substructure variables the baselines and targets use
SUBSTRUCTURE_KEYS: dict[str, str] = {"mass_sd": S.JET_MASS_SD, "tau21": S.JET_TAU21, "tau32": S.JET_TAU32}
# batch key -> Parquet column of event-level datasets (the same names)
EVENT_KEYS: dict[str, str] = {c: c for c in S.EVENT_COLUMNS}


def target_columns(cfg: Config) -> list[str]:
    """The substructure columns the pretraining target reads (none for the jet mass or the labels), so that a
    dataset without them is refused before any worker starts."""
    m = cfg.model
    if m.target in ("mass_sd_bins", "mass_hybrid_bins"):
        return [S.JET_MASS_SD]
    if m.target == "joint_bins":
        return [SUBSTRUCTURE_KEYS[v] for v in m.target_vars if v in SUBSTRUCTURE_KEYS]
    return []


def has_substructure(dataset: str | Path | S.DatasetMeta) -> bool:
    """Whether the batches of a dataset (its root or metadata) carry ``mass_sd``, ``tau21`` and ``tau32``:
    only datasets converted from files with the hls4ml substructure columns do."""
    meta = dataset if isinstance(dataset, S.DatasetMeta) else S.read_meta(dataset)
    return all(c in meta.substructure_columns for c in SUBSTRUCTURE_KEYS.values())


@dataclass(frozen=True)
class RowGroupRef:
    path: str
    index: int
    num_rows: int


def list_row_groups(root: str | Path, split: str) -> list[RowGroupRef]:
    """All row groups of one split, read from the Parquet footers only."""
    refs = []
    for path in S.split_files(root, split):
        try:
            md = pq.ParquetFile(path).metadata
        except Exception as exc:  # noqa: BLE001 - any footer failure means a corrupt file
            raise S.DatasetError(f"{path}: corrupt Parquet file ({str(exc).splitlines()[0]})") from None
        refs += [RowGroupRef(str(path), i, md.row_group(i).num_rows) for i in range(md.num_row_groups)]
    return refs


def shard_row_groups(refs: list[RowGroupRef], rank: int, size: int) -> list[RowGroupRef]:
    """Deterministic, balanced assignment of row groups to ranks (largest first to the least-loaded rank)."""
    load = [0] * size
    owner = {}
    for i in sorted(range(len(refs)), key=lambda i: (-refs[i].num_rows, refs[i].path, refs[i].index)):
        r = min(range(size), key=lambda r: (load[r], r))
        owner[i] = r
        load[r] += refs[i].num_rows
    return [refs[i] for i in range(len(refs)) if owner[i] == rank]


def model_inputs(features, n_particles: np.ndarray, meta: S.DatasetMeta, max_particles: int,
                 rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The model's ``features`` (B, P', F) and ``mask`` (B, P') from a ``features`` Arrow column and the
    ``n_particles`` values: the one place that decodes, slices to the model's P' and builds the mask, so that
    training and cluster assignment see identical inputs. ``rows`` picks jets (all when None)."""
    feats = S.decode_features(features, meta.n_particles, meta.n_features)
    n = np.asarray(n_particles)
    if rows is not None:
        feats, n = np.ascontiguousarray(feats[rows, :max_particles]), n[rows]  # fancy indexing copies
    else:
        feats = np.array(feats[:, :max_particles], order="C")  # a copy: the decoded view is read-only Arrow memory
    n = np.minimum(n, max_particles)
    mask = (np.arange(max_particles)[None, :] < n[:, None]).astype(np.float32)
    return feats, mask


def mass_bin_targets(mass: np.ndarray, lo: float, hi: float, n_bins: int, log: bool = False) -> np.ndarray:
    """Equal-width jet-mass bins over [lo, hi) (in log m with ``log``: each bin's width in GeV is proportional
    to its mass); the class index used as the pretraining target. Masses outside go to the edge bins."""
    if log:
        mass, lo, hi = np.log(np.maximum(mass, lo)), np.log(lo), np.log(hi)
    return np.clip(np.floor((mass - lo) / (hi - lo) * n_bins), 0, n_bins - 1).astype(np.int32)


def hybrid_mass(mass: np.ndarray, mass_sd: np.ndarray, sd_fraction: float) -> np.ndarray:
    """m_SD where soft drop keeps at least ``sd_fraction`` of the jet mass, else the ungroomed m.

    Kept two-prong jets sit in sharp m_SD peaks (W 80, Z 91, t 175 GeV); when grooming removes a prong, m_SD
    falls towards zero for every class, while the ungroomed m keeps its lower edge at the boson mass. No labels:
    both masses come from the jet's own constituents. A missing m_SD (NaN) falls back to m.
    """
    keep = np.nan_to_num(mass_sd, nan=-1.0) >= sd_fraction * mass
    return np.where(keep, mass_sd, mass)


def target_ranges(cfg: Config) -> list[tuple[float, float]]:
    """The binned range of each ``model.target_vars`` entry: masses over the selection window, the
    N-subjettiness ratios over [0, 1]."""
    d = cfg.data
    return [(d.mass_min, d.mass_max) if v.startswith("mass")
            else (0.0, cfg.model.target_jet_mass_max) if v.startswith("m_j") else (0.0, 1.0)
            for v in cfg.model.target_vars]


def joint_bin_targets(values: list[np.ndarray], ranges: list[tuple[float, float]], bins: list[int]) -> np.ndarray:
    """One class per cell of the equal-width grid over several jet variables (row-major: the last variable
    varies fastest); values outside a range go to its edge bin."""
    index = np.zeros(len(values[0]), np.int64)
    for v, (lo, hi), n in zip(values, ranges, bins, strict=True):
        index = index * n + mass_bin_targets(np.nan_to_num(v, nan=lo), lo, hi, n)
    return index.astype(np.int32)


class JetStream:
    """Batches of selected jets of one split for one worker (rank ``rank`` of ``size``).

    ``targets=False`` leaves out the pretraining target (no ``target`` key), for readers that only evaluate or
    compare (baselines, studies): they then read a dataset that lacks the columns the config's target needs.
    """

    def __init__(self, cfg: Config, split: str, rank: int = 0, size: int = 1, meta: S.DatasetMeta | None = None,
                 targets: bool = True):
        self.cfg = cfg
        self.targets = targets
        self.root = cfg.data.path
        self.meta = meta or S.read_meta(self.root)
        self.split = split
        self.rank, self.size = rank, size
        missing = [c for c in cfg.data.classes if c not in self.meta.class_names]
        if missing:
            raise S.DatasetError(f"data.classes: {missing} not among the dataset's classes {self.meta.class_names}")
        if cfg.data.level != self.meta.level:
            raise S.DatasetError(f"data.level={cfg.data.level} but {self.root} is a {self.meta.level}-level dataset")
        if self.meta.level == "event" and cfg.data.max_particles != self.meta.n_particles:
            # slots hold jet 1's particles, then jet 2's: keeping fewer would drop the second jet
            raise S.DatasetError(f"data.max_particles={cfg.data.max_particles}: event datasets must be read whole "
                                 f"({self.meta.n_particles} particles per event, {self.root})")
        if cfg.data.max_particles > self.meta.n_particles:
            raise S.DatasetError(f"data.max_particles={cfg.data.max_particles} exceeds the dataset's "
                                 f"{self.meta.n_particles} particles per jet ({self.root})")
        self.class_ids = np.array([self.meta.class_names.index(c) for c in cfg.data.classes], dtype=np.int64)
        # dataset label -> index within cfg.data.classes (selected jets only ever look up kept classes)
        self._class_index = np.full(len(self.meta.class_names), -1, np.int32)
        self._class_index[self.class_ids] = np.arange(len(self.class_ids), dtype=np.int32)
        all_refs = list_row_groups(self.root, split)
        if not all_refs:
            raise S.DatasetError(f"{self.root}: split '{split}' holds no data")
        self.refs = shard_row_groups(all_refs, rank, size)
        self._files = threading.local()
        self._selected_rows: int | None = None
        self._optional = {k: c for k, c in SUBSTRUCTURE_KEYS.items() if c in self.meta.substructure_columns}
        self._optional.update({k: c for k, c in EVENT_KEYS.items() if c in self.meta.event_columns})
        # decoded row groups of this shard, kept across epochs when data.cache is on (None: off)
        self._cache: dict[RowGroupRef, Batch] | None = {} if cfg.data.cache else None

    # -- reading -----------------------------------------------------------------------------------------
    def _file(self, path: str) -> pq.ParquetFile:
        files = self._files.__dict__.setdefault("open", {})  # one handle per file and reader thread
        if path not in files:
            files[path] = pq.ParquetFile(path)
        return files[path]

    def _read_many(self, refs: list[RowGroupRef]) -> Iterator[Batch]:
        """``_read`` over ``refs`` with ``data.reader_threads`` row groups in flight, results in order (so the
        stream stays deterministic); Parquet decoding and numpy copies release the GIL."""
        threads = self.cfg.data.reader_threads
        if threads <= 1:
            yield from map(self._read, refs)
            return
        with ThreadPoolExecutor(threads, thread_name_prefix="ucluster-read") as pool:
            pending: deque = deque()
            it = iter(refs)
            for ref in itertools.islice(it, 2 * threads):
                pending.append(pool.submit(self._read, ref))
            while pending:
                chunk = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(self._read, nxt))
                yield chunk

    def window(self) -> tuple[float, float, float, float]:
        """(mass_min, mass_max, pt_min, pt_max) of this split: the training selection, or for the evaluated
        splits ``data.eval_window`` when set."""
        d = self.cfg.data
        if self.split != "train" and d.eval_window:
            lo_m, hi_m, lo_pt, hi_pt = d.eval_window
            return float(lo_m), float(hi_m), float(lo_pt), float(hi_pt)
        return d.mass_min, d.mass_max, d.pt_min, d.pt_max

    def _select(self, label: np.ndarray, mass: np.ndarray, pt: np.ndarray) -> np.ndarray:
        lo_m, hi_m, lo_pt, hi_pt = self.window()
        return np.isin(label, self.class_ids) & (mass > lo_m) & (mass < hi_m) & (pt > lo_pt) & (pt < hi_pt)

    def _read(self, ref: RowGroupRef) -> Batch:
        """Read one row group and return its selected jets as numpy arrays (features sliced to P'; plus
        :data:`SUBSTRUCTURE_KEYS` when the dataset has them). With ``data.cache`` the decoded row group is kept
        and handed out again (read-only: every consumer copies or only reads), so later epochs skip Parquet."""
        if self._cache is not None:
            hit = self._cache.get(ref)
            if hit is None:
                hit = self._cache[ref] = self._decode(ref)
            return dict(hit)
        return self._decode(ref)

    def _decode(self, ref: RowGroupRef) -> Batch:
        try:
            table = self._file(ref.path).read_row_group(
                ref.index, columns=_SMALL_COLUMNS + [*self._optional.values(), S.FEATURES])
        except Exception as exc:  # noqa: BLE001
            reason = str(exc).splitlines()[0]
            raise S.DatasetError(f"{ref.path}: cannot read row group {ref.index} ({reason})") from None
        label = table.column(S.LABEL).to_numpy()
        mass = table.column(S.JET_MASS).to_numpy()
        pt = table.column(S.JET_PT).to_numpy()
        sel = np.flatnonzero(self._select(label, mass, pt))
        feats, mask = model_inputs(table.column(S.FEATURES), table.column(S.N_PARTICLES).to_numpy(), self.meta,
                                   self.cfg.data.max_particles, sel)
        batch = {
            "features": feats,
            "mask": mask,
            "mass": mass[sel],
            "pt": pt[sel],
            "key": table.column(S.JET_KEY).to_numpy()[sel],
            "label": self._class_index[label[sel]],
            **{k: table.column(c).to_numpy()[sel] for k, c in self._optional.items()},
        }
        return self._targets(batch) if self.targets else batch

    def _targets(self, batch: Batch) -> Batch:
        d, m = self.cfg.data, self.cfg.model
        if m.target == "truth":
            batch["target"] = batch["label"].astype(np.int32)
        elif m.target == "none":  # self-supervised only: the single-logit head has nothing to learn
            batch["target"] = np.zeros(len(batch["label"]), np.int32)
        elif m.target == "joint_bins":  # several unsupervised targets at once, e.g. m_SD x tau21
            missing = [v for v in m.target_vars if v not in batch]
            if missing:
                raise S.DatasetError(f"{self.root}: model.target_vars {missing} need the substructure columns "
                                     "(jet_mass_sd, jet_tau21, jet_tau32: convert files that carry them) or, "
                                     "for m_j1/m_j2/tau21_j1/tau21_j2, an event-level dataset")
            batch["target"] = joint_bin_targets([batch[v] for v in m.target_vars], target_ranges(self.cfg),
                                                list(m.target_bins))
        else:  # one binned mass (MASS_TARGETS): the jet mass, or the groomed/hybrid mass (sharper peaks)
            if m.target == "mass_bins":
                mass = batch["mass"]
            elif "mass_sd" not in batch:
                raise S.DatasetError(f"{self.root}: model.target={m.target} needs the soft-drop mass column "
                                     "'jet_mass_sd' (convert files that carry j_mass_mmdt, or train on the "
                                     "ungroomed mass: --model.target mass_bins --train.kmeans_space latent)")
            elif m.target == "mass_sd_bins":
                mass = batch["mass_sd"]
            else:
                mass = hybrid_mass(batch["mass"], batch["mass_sd"], m.hybrid_sd_fraction)
            batch["target"] = mass_bin_targets(mass, d.mass_min, d.mass_max, m.mass_bins,
                                               log=m.mass_bin_spacing == "log")
        return batch

    def selected_rows(self) -> int:
        """Jets of this worker's shard that pass the selection (reads only three small columns)."""
        if self._selected_rows is None:
            total = 0
            for ref in self.refs:
                t = self._file(ref.path).read_row_group(ref.index, columns=[S.LABEL, S.JET_MASS, S.JET_PT])
                total += int(self._select(*(t.column(c).to_numpy() for c in (S.LABEL, S.JET_MASS, S.JET_PT))).sum())
            self._selected_rows = total
        return self._selected_rows

    # -- iteration -----------------------------------------------------------------------------------------
    def batches(self, batch_size: int, steps: int, epoch: int, seed: int = 0, shuffle: bool = True) -> Iterator[Batch]:
        """Exactly ``steps`` full batches of this worker's shard, seeded by seed/epoch/rank.

        Shuffled, the row groups are read in a random order into a streaming buffer of ``data.shuffle_buffer``
        jets; every batch is drawn at random from all the jets the buffer holds, and the next row group is read
        in whenever it holds fewer. Compared with emptying and refilling the buffer block by block, no stretch
        of the epoch is fed from only the few row groups of a last, small block: with one class per file
        (simulated samples, one file per process) the last quarter of epoch 0 (seed 1) of a 91 k-jet shard was
        44 % W / 39 % Z / 17 % t where the whole shard is 34 / 34 / 31, and the trained network swung between
        epochs (docs/clustering-quality.md, round 11). Unshuffled, the jets come in file order.
        """
        rng = np.random.default_rng([seed, epoch, self.rank])
        order = rng.permutation(len(self.refs)) if shuffle else np.arange(len(self.refs))
        # unshuffled, nothing needs holding back: each batch goes out as soon as it is complete
        capacity = max(self.cfg.data.shuffle_buffer, batch_size) if shuffle else batch_size
        buffer = _Reservoir(capacity)
        emitted = 0
        for chunk in self._read_many([self.refs[i] for i in order]):
            buffer.add(chunk)
            while len(buffer) >= capacity and emitted < steps:
                yield buffer.draw(batch_size, rng if shuffle else None)
                emitted += 1
            if emitted == steps:
                return
        while len(buffer) >= batch_size and emitted < steps:
            yield buffer.draw(batch_size, rng if shuffle else None)
            emitted += 1
        if emitted < steps:
            raise S.DatasetError(f"{self.root}: worker {self.rank} ran out of '{self.split}' jets after "
                                 f"{emitted} of {steps} steps")

    def eval_batches(self, batch_size: int, max_jets: int = 0) -> Iterator[Batch]:
        """Every selected jet of the shard once, in file order; the last batch is zero-padded, ``valid`` marks rows.

        With ``max_jets`` (per worker) the row groups are visited in :func:`spread_order` instead, and each gives
        an equal share of the cap (its first rows); what a short group lacks is taken from the rows the others did
        not give. Simulated and converted files often hold one class each, so the first N jets in
        file order would be one or two classes, and so would whole row groups when the cap is below a few of them
        (measured: 1 024 evaluated jets of 1 600-jet row groups were one class, accuracy 0.84 and NMI 0; the
        k-means initialisation and input statistics, also capped reads, came from one class on the demo
        sample). Every row group of the shard is read, but only the capped jets go through the network."""
        buffer = _Reservoir(batch_size)

        def full_batches() -> Iterator[Batch]:
            while len(buffer) >= batch_size:
                out = buffer.draw(batch_size, None)
                out["valid"] = np.ones(batch_size, np.float32)
                yield out

        if not max_jets:
            for chunk in self._read_many(self.refs):
                buffer.add(chunk)
                yield from full_batches()
        else:
            refs = [self.refs[i] for i in spread_order(len(self.refs))]
            seen, spare, spare_rows = 0, [], 0
            for i, chunk in enumerate(self._read_many(refs)):
                rows = len(chunk["mass"])
                share = min(rows, -(-(max_jets - seen) // (len(refs) - i)))  # ceil: the rest over the groups left
                if spare_rows < max_jets:  # rows after the share, which a later, short group may need
                    # (a copy, by index: a view would keep the whole row group in memory)
                    rest = _take(chunk, np.arange(share, min(rows, share + max_jets - spare_rows)))
                    spare.append(rest)
                    spare_rows += len(rest["mass"])
                seen += share
                buffer.add(_take(chunk, slice(0, share)))  # the group's first rows: the same jets every time
                yield from full_batches()
                if seen >= max_jets:
                    break
            for rest in spare:  # some groups were short of their share: top up in the same fixed order
                if seen >= max_jets:
                    break
                extra = _take(rest, slice(0, max_jets - seen))
                seen += len(extra["mass"])
                buffer.add(extra)
                yield from full_batches()
        held = len(buffer)
        if held:
            out = {k: _pad(v, batch_size) for k, v in buffer.draw(held, None).items()}
            out["valid"] = (np.arange(batch_size) < held).astype(np.float32)
            out["mask"][held:, 0] = 1.0  # padded rows get one (zero) particle so they stay finite
            yield out


def spread_order(n: int) -> np.ndarray:
    """A fixed order of ``n`` items whose every prefix is spread evenly over the whole list (bit-reversed
    indices, the van der Corput sequence): a capped evaluation then samples every file, the same jets every epoch."""
    bits = max(1, int(n - 1).bit_length())
    keys = [int(f"{i:0{bits}b}"[::-1], 2) for i in range(n)]
    return np.argsort(np.asarray(keys, np.int64), kind="stable")


class _Reservoir:
    """The jets of a streaming shuffle: arrays allocated for ``capacity`` jets plus a row group (grown only when a
    larger row group does not fit), rows ``first:held`` in use. A random draw takes rows out and moves rows from
    the end into the holes; an in-order draw advances ``first``, and the rows in use move back to the start only
    when a new chunk would not fit behind them. Drawing copies only the jets drawn and moved."""

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self.arrays: Batch = {}
        self.first = self.held = 0

    def __len__(self) -> int:
        return self.held - self.first

    def add(self, chunk: Batch) -> None:
        n, used = len(chunk["mass"]), len(self)
        if n == 0:
            return
        size = len(self.arrays["mass"]) if self.arrays else 0
        if self.held + n <= size:  # room behind the rows in use
            for key, values in chunk.items():
                self.arrays[key][self.held:self.held + n] = values
            self.held += n
            return
        grown = max(self.capacity + n, used + n) if used + n > size else size
        for key, values in chunk.items():
            old = self.arrays.get(key)
            new = old if grown == size else np.empty((grown, *values.shape[1:]), values.dtype)
            if old is not None:
                new[:used] = old[self.first:self.held]  # compact (and move, when grown) the rows in use
            new[used:used + n] = values
            self.arrays[key] = new
        self.first, self.held = 0, used + n

    def draw(self, n: int, rng: np.random.Generator | None) -> Batch:
        """``n`` jets taken at random (``rng``), in random order, or the first ``n`` in the order they came (None)."""
        if n > len(self):
            raise ValueError(f"cannot draw {n} jets from a buffer holding {len(self)}")
        if rng is None:
            out = {k: v[self.first:self.first + n].copy() for k, v in self.arrays.items()}
            self.first += n
            return out
        idx = self.first + rng.choice(len(self), n, replace=False)
        out = {k: v[idx] for k, v in self.arrays.items()}
        end = self.held - n
        holes = idx[idx < end]  # rows drawn from below the new end are refilled from the rows above it
        movers = np.setdiff1d(np.arange(end, self.held), idx)
        for v in self.arrays.values():
            v[holes] = v[movers]
        self.held = end
        return out


def _take(batch: Batch, idx) -> Batch:
    return {k: v[idx] for k, v in batch.items()}


def _pad(values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *values.shape[1:]), dtype=values.dtype)
    out[: len(values)] = values
    return out


def prefetch(iterator: Iterator[Batch], depth: int = 4) -> Iterator[Batch]:
    """Run ``iterator`` in a background thread so reading overlaps the training step (pyarrow and numpy
    release the GIL). Exceptions are re-raised in the consumer; stopping early stops the producer."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, daemon=True, name="ucluster-prefetch")
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
