"""Source parameter values -> the values of the lowered graph's initialisers, one tensor at a time.

The lowered graph's parameters are the network's own, or tensors that passes (towers, BN folding) made
from them, each with a recipe: the `sources` it is made of and how to `assemble` it. Every value is made
on demand from the source values (seeded or given), when it is about to be written, and dropped after:
peak memory is a few tensors, not the model. Values depend only on their names and the sources, never
on the order they are made in, so a few threads make the next tensors while the current one is written
(numpy releases the GIL while it draws and computes) and the output stays byte-identical.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np

from ..dsl.errors import WeightsError
from .ir import Param
from .weights import initial

Source = Callable[[Param], np.ndarray]
FLOAT16_MAX = float(np.finfo(np.float16).max)


class Recipe(Protocol):
    sources: tuple[str, ...]

    def assemble(self, values: list[np.ndarray]) -> np.ndarray: ...


def seeded(seed: int) -> Source:
    """Each parameter's seeded initial value (compiler/weights.py)."""
    return lambda param: initial(param, seed)


def given(values: Iterable[tuple[Param, np.ndarray]]) -> Source:
    """The values given, by parameter name."""
    table = {param.name: value for param, value in values}
    return lambda param: table[param.name]


def values(params: Sequence[Param], sources: Sequence[Param], source: Source,
           recipes: Mapping[str, Recipe], dtype: str = "float32", workers: int | None = None) -> Iterator[np.ndarray]:
    """The value of each of `params`, in order, as `dtype`: a source parameter's from `source`, a made
    one's from its recipe. Up to `workers` threads work ahead of the consumer."""
    by_name = {p.name: p for p in sources}

    def value(name: str) -> np.ndarray:
        recipe = recipes.get(name)
        if recipe is None:
            return source(by_name[name])
        return recipe.assemble([value(s) for s in recipe.sources])

    def final(param: Param) -> np.ndarray:
        return _cast(param.name, value(param.name), np.dtype(dtype))

    return ordered([lambda p=p: final(p) for p in params], workers)


def _cast(name: str, value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if value.dtype == dtype:
        return value
    with np.errstate(over="ignore"):  # reported below, with the tensor's name
        cast = value.astype(dtype)
    if dtype == np.float16 and not np.isfinite(cast).all():
        raise WeightsError(f"`{name}` has values beyond float16's range (+-{FLOAT16_MAX:g}): the largest "
                           f"magnitude is {np.abs(value).max():g}; compile it as float32")
    return cast


def ordered(tasks: Sequence[Callable[[], np.ndarray]], workers: int | None = None) -> Iterator[np.ndarray]:
    """The tasks' results in order, computed by `workers` threads (default: the usable cores, at most
    4) at most `workers + 1` ahead of the consumer."""
    workers = workers if workers is not None else min(4, len(os.sched_getaffinity(0))
                                                         if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers <= 1:
        yield from (task() for task in tasks)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="cnnc-values")
    pending: deque[Future] = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(task))
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
