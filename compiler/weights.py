"""Deterministic parameter initialisation.

Each tensor draws from its own generator, seeded by the compile seed and a hash of the tensor's name,
so a tensor's values depend only on (seed, name, shape) — not on the order of layers or on what else
is in the network. He-normal for conv and dense weights (std = sqrt(2 / fan_in)), zero biases,
BN gamma 1, beta 0, running mean 0, running variance 1; a `fill` tensor is its `Param.fill` throughout
(PReLU slopes 0.25, a layer scale's `init`); constants that are `sign` draw +-1.

A seed is an integer from 0 to 2**32-1, the range of the generator's first seed word; any other value
is refused rather than reduced into it (masking made 2**32 silently the same network as 0).
"""
from __future__ import annotations

import hashlib
from typing import Iterator

import numpy as np

from ..errors import CnncError
from .ir import Graph, Param

SEED_MAX = 2**32 - 1


def check_seed(seed: object) -> int:
    """`seed` as an int, when it is an integer from 0 to `SEED_MAX`; else a CnncError saying so."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise CnncError(f"seed must be an integer from 0 to 2**32-1 ({SEED_MAX}), got {seed!r}")
    return int(seed)


def initial(param: Param, seed: int) -> np.ndarray:
    """The initial value of one parameter, as float32."""
    chunks = list(initial_chunks(param, seed, max(param.size, 1)))
    return (chunks[0] if len(chunks) == 1 else np.zeros(0, np.float32)).reshape(param.shape)


def initial_chunks(param: Param, seed: int, size: int) -> Iterator[np.ndarray]:
    """`initial(param, seed)` flattened, in pieces of at most `size` values: the same values, since one
    generator draws them in order, without the whole tensor in memory at once."""
    rng = _rng(param, seed) if param.init in ("he_normal", "sign") else None
    std = np.float32(np.sqrt(2.0 / param.fan_in))
    for start in range(0, param.size, size):
        n = min(size, param.size - start)
        if rng is None:  # zeros, ones or fill: nothing is drawn
            yield np.full(n, _FILLS.get(param.init, param.fill), np.float32)
        elif param.init == "sign":
            yield np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
        else:
            values = rng.standard_normal(n, dtype=np.float32)
            values *= std
            yield values


_FILLS = {"zeros": 0.0, "ones": 1.0}  # `fill` takes the Param's own value


def _rng(param: Param, seed: int) -> np.random.Generator:
    digest = hashlib.blake2b(param.name.encode(), digest_size=8).digest()
    return np.random.default_rng([check_seed(seed), int.from_bytes(digest, "little")])


def initial_weights(graph: Graph, seed: int = 0) -> Iterator[tuple[Param, np.ndarray]]:
    """Every parameter of `graph` with its initial value, in layer order (generated lazily; the seed is
    checked at once)."""
    check_seed(seed)
    return _initial_weights(graph, seed)


def _initial_weights(graph: Graph, seed: int) -> Iterator[tuple[Param, np.ndarray]]:
    for param in graph.params:
        yield param, initial(param, seed)
