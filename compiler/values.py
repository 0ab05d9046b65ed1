"""Source parameter values -> the values of the lowered graph's initialisers, as streams of chunks.

The lowered graph's parameters are the network's own, or tensors that passes (towers, BN folding) made
from them, each with a recipe: the `sources` it is made of and how to `assemble` it. Every tensor is made
when it is about to be written, as flat chunks of at most `CHUNK` values (a seeded tensor's blocks are
drawn a few ahead on every core, each from its own stream: compiler/weights.py), so memory holds a few
chunks, not the model and not even its largest tensor. A few threads make the chunks of the next tensors, within a byte
`BUDGET`, while the current one is written (numpy releases the GIL while it draws and computes). Values
depend only on names and sources, never on which thread made them: the output stays byte-identical.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from .errors import WeightsError
from .ir import Param
from .weights import initial, initial_chunks

CHUNK = 1 << 20  # values per chunk
BUDGET = 128 << 20  # bytes of chunks made ahead of the tensor being written
HEAD_CHUNKS = 2  # chunks of the tensor being written that may wait for the writer
FLOAT16_MAX = float(np.finfo(np.float16).max)
Chunks = Iterator[np.ndarray]


class Recipe(Protocol):
    @property
    def sources(self) -> tuple[str, ...]: ...  # read-only: the recipes are frozen dataclasses

    def assemble(self, values: list[np.ndarray]) -> np.ndarray: ...


class Source(Protocol):
    """Where the network's own parameters get their values: whole, or in chunks."""

    def whole(self, param: Param) -> np.ndarray: ...

    def chunks(self, param: Param, size: int) -> Chunks: ...


class Seeded:
    """Each parameter's seeded initial value (compiler/weights.py)."""

    def __init__(self, seed: int):
        self.seed = seed

    def whole(self, param: Param) -> np.ndarray:
        return initial(param, self.seed)

    def chunks(self, param: Param, size: int) -> Chunks:
        return initial_chunks(param, self.seed, size)


class Given:
    """The values given, by parameter name."""

    def __init__(self, values: Iterable[tuple[Param, np.ndarray]]):
        self.table = {param.name: value for param, value in values}

    def whole(self, param: Param) -> np.ndarray:
        return self.table[param.name]

    def chunks(self, param: Param, size: int) -> Chunks:
        return _pieces(self.table[param.name], size)


def values(params: Sequence[Param], sources: Sequence[Param], source: Source, recipes: Mapping[str, Recipe],
           dtype: str = "float32", workers: int | None = None) -> Iterator[Chunks]:
    """For each of `params`, in order, its value as `dtype` in flat chunks: a source parameter's from
    `source`, a made one's from its recipe. Up to `workers` threads work ahead of the consumer, which
    must read each tensor's chunks before asking for the next tensor."""
    by_name = {p.name: p for p in sources}

    def whole(name: str) -> np.ndarray:
        recipe = recipes.get(name)
        if recipe is None:
            return source.whole(by_name[name])
        return recipe.assemble([whole(s) for s in recipe.sources])

    def chunks(param: Param) -> Chunks:
        made = _pieces(whole(param.name), CHUNK) if param.name in recipes else source.chunks(param, CHUNK)
        return (_cast(param.name, chunk, np.dtype(dtype)) for chunk in made)

    with _small_pages():
        yield from _Streams([functools.partial(chunks, p) for p in params], workers)


def _pieces(value: np.ndarray, size: int) -> Chunks:
    flat = np.asarray(value).reshape(-1)
    return (flat[start:start + size] for start in range(0, flat.size, size))


def _cast(name: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if value.dtype == dtype:
        return value
    with np.errstate(over="ignore"):  # reported below, with the tensor's name
        cast = value.astype(dtype)
    if dtype == np.float16 and not np.isfinite(cast).all():
        raise WeightsError(f"`{name}` has values beyond float16's range (+-{FLOAT16_MAX:g}): the largest "
                           f"magnitude is {np.abs(value).max():g}; compile it as float32")
    return cast


class _End:
    pass


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class _Streams:
    """Tensors made as chunks by worker threads and read in order by one consumer.

    Workers take tensors in order. The chunks of the tensor being read (the head) wait only for the
    consumer (at most `HEAD_CHUNKS` queued); chunks of later tensors wait until they fit in `BUDGET`,
    or until their tensor becomes the head. The head is always taken by a worker (tensors are taken in
    order) and never waits for the budget, so this cannot deadlock. The workers are daemon threads: an
    interrupted compile exits at once instead of finishing a tensor nobody will write.
    """

    def __init__(self, tasks: Sequence[Callable[[], Chunks]], workers: int | None = None):
        if workers is None:
            cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
            workers = min(4, len(cores))
        self.tasks = tasks
        self.queues: list[deque[Any]] = [deque() for _ in tasks]
        self.lock = threading.Condition()
        self.taken = self.head = self.used = 0
        self.closed = False
        self.inline = workers <= 1
        for _ in range(0 if self.inline else workers):
            threading.Thread(target=self._work, name="cnnc-values", daemon=True).start()

    def __iter__(self) -> Iterator[Chunks]:
        try:
            for i, task in enumerate(self.tasks):
                with self.lock:
                    self.head = i
                    self.lock.notify_all()
                chunks = task() if self.inline else self._read(i)
                yield chunks
                for _ in chunks:  # whatever the consumer left, so that the budget is given back
                    pass
        finally:
            with self.lock:
                self.closed = True
                self.lock.notify_all()

    def _read(self, i: int) -> Chunks:
        while True:
            with self.lock:
                while not self.queues[i]:
                    self.lock.wait()
                item = self.queues[i].popleft()
                if isinstance(item, np.ndarray):
                    self.used -= item.nbytes
                self.lock.notify_all()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.closed or self.taken == len(self.tasks):
                    return
                i = self.taken
                self.taken += 1
            try:
                for chunk in self.tasks[i]():
                    if not self._put(i, chunk):
                        return
                self._put(i, _End())
            except BaseException as e:  # handed to the consumer, which raises it
                self._put(i, _Failed(e))

    def _put(self, i: int, item: Any) -> bool:
        size = item.nbytes if isinstance(item, np.ndarray) else 0
        with self.lock:
            while not self.closed and not self._room(i, size):
                self.lock.wait()
            if self.closed:
                return False
            self.queues[i].append(item)
            self.used += size
            self.lock.notify_all()
            return True

    def _room(self, i: int, size: int) -> bool:
        if i == self.head:
            return len(self.queues[i]) < HEAD_CHUNKS or size == 0
        return self.used + size <= BUDGET


_pages_lock = threading.Lock()
_pages_users = 0
_pages_before = True


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """numpy asks Linux for huge pages for large arrays; where memory is fragmented the kernel then
    compacts it on the first touch of each page. These arrays are written once and dropped, so that
    only costs: VGG-16 took 1.4 s of system time with it, 0.3 s without (measured). The switch is
    numpy's and process-wide: the first of concurrent compiles turns it off, the last restores it."""
    global _pages_users, _pages_before
    core = getattr(np, "_core", None) or getattr(np, "core", None)  # numpy 2, numpy 1.26
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:  # nothing to turn off
        yield
        return
    with _pages_lock:
        if _pages_users == 0:
            _pages_before = switch(False)
        _pages_users += 1
    try:
        yield
    finally:
        with _pages_lock:
            _pages_users -= 1
            if _pages_users == 0:
                switch(_pages_before)
