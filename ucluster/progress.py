"""Progress that reads well both on a terminal (a tqdm bar) and in captured logs (a line every few seconds).

Horovod workers and Spark executors never write to a terminal: a tqdm bar there becomes one long line of
carriage returns, so they get short periodic status lines instead.
"""

from __future__ import annotations

import sys
import time


class _Lines:
    def __init__(self, total: int, desc: str, every: float):
        self.total, self.desc, self.every = total, desc, every
        self.n, self.postfix = 0, ""
        self.t0 = self.last = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.every and self.n < self.total:
            self.last = now
            rate = self.n / max(now - self.t0, 1e-9)
            print(f"{self.desc}: {self.n}/{self.total} ({rate:.1f}/s){self.postfix}", flush=True)

    def set_postfix(self, **values) -> None:
        self.postfix = "".join(f" {k}={v}" for k, v in values.items())

    def close(self) -> None:
        pass


class _Off:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass

    def close(self) -> None:
        pass


def progress(total: int, desc: str, enabled: bool = True, every: float = 15.0):
    if not enabled:
        return _Off()
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="step", leave=False)
    return _Lines(total, desc, every)
