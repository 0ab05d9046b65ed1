"""Deterministic parameter initialisation.

Each tensor draws from its own streams, seeded by the compile seed and a hash of the tensor's name, so a
tensor's values depend only on (seed, name, shape) — not on the order of layers or on what else is in the
network. He-normal for conv and dense weights (std = sqrt(2 / fan_in)), zero biases, BN gamma 1, beta 0,
running mean 0, running variance 1; a `fill` tensor is its `Param.fill` throughout (PReLU slopes 0.25, a
layer scale's `init`); constants that are `sign` draw +-1.

A tensor is drawn in blocks of `BLOCK` values, block k from its own stream: block 0 from the generator
seeded by (seed, name hash), block k > 0 from that seed sequence's child with spawn key (k,). The blocks of
a large tensor are drawn at once on every core (numpy's generators release the GIL while they draw), and
since each block's values are fixed by (seed, name, k) alone, the bytes do not depend on the number of
cores or threads. A tensor of at most `BLOCK` values is one block: its values are those of a single
generator seeded by (seed, name hash).

A seed is an integer from 0 to 2**32-1, the range of the generator's first seed word; any other value
is refused rather than reduced into it (masking made 2**32 silently the same network as 0).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import CnncError
from .ir import Graph, Param

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

SEED_MAX = 2**32 - 1
BLOCK = 1 << 20  # values per stream; changing it changes every tensor larger than it
AHEAD = 8  # blocks (32 MiB) a tensor's reader may have drawn ahead of it, whatever the number of cores


def check_seed(seed: object) -> int:
    """`seed` as an int, when it is an integer from 0 to `SEED_MAX`; else a CnncError saying so."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise CnncError(f"seed must be an integer from 0 to 2**32-1 ({SEED_MAX}), got {seed!r}")
    return int(seed)


def initial(param: Param, seed: int, threads: int | None = None) -> np.ndarray:
    """The initial value of one parameter, as float32; its blocks drawn on up to `threads` threads
    (default: every core; the values do not depend on it)."""
    out = np.empty(param.size, np.float32)
    if param.init not in _DRAWN:
        out.fill(_fill(param))
    else:
        key = _key(param, seed)
        starts = range(0, param.size, BLOCK)
        pool = _pool(threads) if len(starts) > 1 else None
        if pool is None:
            for k, start in enumerate(starts):
                _draw(param, key, k, out[start:start + BLOCK])
        else:
            for done in [pool.submit(_draw, param, key, k, out[start:start + BLOCK]) for k, start in enumerate(starts)]:
                done.result()
    return out.reshape(param.shape)


def initial_chunks(param: Param, seed: int, size: int, threads: int | None = None) -> Iterator[np.ndarray]:
    """`initial(param, seed)` flattened, in pieces of at most `size` values, without the whole tensor in
    memory at once: the blocks are drawn a few ahead of the reader, on up to `threads` threads."""
    if param.init not in _DRAWN:  # zeros, ones or fill: nothing is drawn
        for start in range(0, param.size, size):
            yield np.full(min(size, param.size - start), _fill(param), np.float32)
        return
    yield from _pieces(_blocks(param, _key(param, seed), threads), size)


_DRAWN = ("he_normal", "sign")
_FILLS = {"zeros": 0.0, "ones": 1.0}  # `fill` takes the Param's own value


def _fill(param: Param) -> float:
    return _FILLS.get(param.init, param.fill)


def _key(param: Param, seed: int) -> list[int]:
    digest = hashlib.blake2b(param.name.encode(), digest_size=8).digest()
    return [check_seed(seed), int.from_bytes(digest, "little")]


def _draw(param: Param, key: list[int], k: int, out: np.ndarray) -> None:
    """Block `k` of `param`'s values, into `out` (its length is the block's)."""
    sequence = np.random.SeedSequence(key, spawn_key=(k,) if k else ())
    rng = np.random.Generator(np.random.PCG64(sequence))
    if param.init == "sign":
        np.copyto(out, np.where(rng.random(out.size) < 0.5, -1.0, 1.0))
    else:
        rng.standard_normal(out=out, dtype=np.float32)
        out *= np.float32(np.sqrt(2.0 / param.fan_in))


def _blocks(param: Param, key: list[int], threads: int | None) -> Iterator[np.ndarray]:
    """`param`'s blocks in order; with more than one, drawn on the pool, at most `AHEAD` ahead of the reader
    (compiler/values.py keeps its own byte budget for the chunks it holds; this bounds what it cannot see)."""
    count = -(-param.size // BLOCK)
    threads = _threads(threads)
    pool = _pool(threads) if count > 1 else None

    def block(k: int) -> np.ndarray:
        out = np.empty(min(BLOCK, param.size - k * BLOCK), np.float32)
        _draw(param, key, k, out)
        return out

    if pool is None:
        yield from (block(k) for k in range(count))
        return
    ahead: deque[Future[np.ndarray]] = deque()
    try:
        for k in range(count):
            ahead.append(pool.submit(block, k))
            if len(ahead) > min(2 * threads, AHEAD):
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
    finally:  # a reader that stops early leaves nothing queued
        for future in ahead:
            future.cancel()


def _pieces(blocks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The values of `blocks` re-cut into pieces of `size` (the last may be shorter)."""
    if size == BLOCK:
        yield from blocks
        return
    held: list[np.ndarray] = []
    count = 0
    for block in blocks:
        held.append(block)
        count += block.size
        while count >= size:
            flat = np.concatenate(held) if len(held) > 1 else held[0]
            yield flat[:size]
            held, count = [flat[size:]], count - size
    if count:
        yield np.concatenate(held) if len(held) > 1 else held[0]


_pools: dict[tuple[int, int], ThreadPoolExecutor] = {}  # by (process id, threads): a forked child makes its own
_pools_lock = threading.Lock()


def _threads(threads: int | None) -> int:
    """`threads`, or by default the number of cores this process may run on."""
    if threads is not None:
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _pool(threads: int | None) -> ThreadPoolExecutor | None:
    """One shared pool per thread count (default: one thread per core); None for one thread."""
    threads = _threads(threads)
    if threads <= 1:
        return None
    from concurrent.futures import ThreadPoolExecutor  # here: 7 ms of start-up that `cnnc check` need not pay

    key = (os.getpid(), threads)
    with _pools_lock:
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix="cnnc-draw")
        return _pools[key]


def initial_weights(graph: Graph, seed: int = 0) -> Iterator[tuple[Param, np.ndarray]]:
    """Every parameter of `graph` with its initial value, in layer order (generated lazily; the seed is
    checked at once)."""
    check_seed(seed)
    return _initial_weights(graph, seed)


def _initial_weights(graph: Graph, seed: int) -> Iterator[tuple[Param, np.ndarray]]:
    for param in graph.params:
        yield param, initial(param, seed)
