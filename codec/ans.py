"""The ANS stack: push and pop symbols under integer frequency tables (constriction underneath).

A frequency table is an int64 array whose last axis holds one frequency per symbol, every
entry at least 1 and every row summing to exactly 2^PRECISION. constriction's lazy
categorical model, given the row minus one, quantizes to exactly these frequencies (its
free weight 2^PRECISION - K is then spread with scale 1.0, and integers below 2^24 are
exact in float32 and float64), so the bits we count are the bits it writes.
"""

from __future__ import annotations

import constriction
import numpy as np

from .errors import FormatError

PRECISION = 24  # every frequency table sums to 2^PRECISION (constriction's default)
GUARD = (1, 0, 0)  # a guarded payload's first 33 bits: one bit, then two 16-bit zeros
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_UNIFORM = constriction.stream.model.Uniform()


def normalize(mass: np.ndarray) -> np.ndarray:
    """Integer masses (rows of any positive total) -> frequencies >= 1 summing to 2^PRECISION.

    Each symbol gets 1 plus its floored share of the rest; what flooring leaves over goes to
    the first most likely symbol. Pure integer arithmetic, so encoder and decoder agree.
    A row whose mass is all zero becomes 1 everywhere plus the rest on its first symbol.
    """
    k = mass.shape[-1]
    one = 1 << PRECISION
    total = np.maximum(mass.sum(axis=-1, keepdims=True), 1)
    freqs = 1 + (mass * (one - k)) // total
    rest = one - freqs.sum(axis=-1)
    top = mass.argmax(axis=-1)
    freqs[np.arange(len(freqs)), top] += rest  # one index per row, so no two adds collide
    return freqs


def information_bits(symbols: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """-log2 P(symbol) of each symbol under its frequency table."""
    f = np.take_along_axis(freqs, symbols[..., None].astype(np.int64), axis=-1)[..., 0]
    return PRECISION - np.log2(f)


class Stack:
    """A stack of ANS words; the last symbol pushed is the first popped.

    Since format version 2 a payload is guarded: its first 33 bits are GUARD, pushed onto the
    empty coder before anything else, and the encoder notes its floor, the fewest valid bits
    its stack held after any pop. A decoder's stack passes through the same states in reverse,
    so a pop that finds fewer valid bits than the floor means the payload has run out: the
    file is damaged or its header claims more than was coded. That pop raises at once rather
    than decoding symbol 0 for as long as the header asks, which an exhausted coder would do.
    A version 1 payload has no guard and no floor (`guarded=False`)."""

    def __init__(self, words: np.ndarray | None = None, floor: int = 0, guarded: bool = True):
        self._guarded = guarded
        self._decoding = words is not None
        if words is None:
            self._coder = constriction.stream.stack.AnsCoder()
            if guarded:
                self.push_uniform(np.array([GUARD[0]]), 2)
                self.push_uniform(np.array(GUARD[1:]), 1 << 16)
        else:
            self._coder = constriction.stream.stack.AnsCoder(np.ascontiguousarray(words, dtype=np.uint32))
        self.floor = floor if self._decoding else self.valid_bits()

    def push(self, symbols: np.ndarray, freqs: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Push symbols (n,) under tables (n, K), or under tables freqs[rows] when many symbols
        share few tables; `pop` with the same tables returns them in order."""
        if len(symbols) == 0:
            return
        self._coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _CATEGORICAL,
                                   _weights(freqs, rows))

    def pop(self, freqs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Pop one symbol per table row (n, K), in row order; or per row of freqs[rows]."""
        if len(freqs if rows is None else rows) == 0:
            return np.zeros(0, dtype=np.int64)
        self._check_not_dry()
        out = self._coder.decode(_CATEGORICAL, _weights(freqs, rows)).astype(np.int64)
        self._note_floor()
        return out

    def push_uniform(self, symbols: np.ndarray, k: int) -> None:
        """Push symbols in [0, k) with k a power of two (so each costs exactly log2 k bits)."""
        if len(symbols) == 0 or k == 1:
            return
        self._coder.encode_reverse(np.ascontiguousarray(symbols, dtype=np.int32), _UNIFORM,
                                   np.full(len(symbols), k, dtype=np.int32))

    def pop_uniform(self, n: int, k: int) -> np.ndarray:
        if n == 0 or k == 1:
            return np.zeros(n, dtype=np.int64)
        self._check_not_dry()
        out = self._coder.decode(_UNIFORM, np.full(n, k, dtype=np.int32)).astype(np.int64)
        self._note_floor()
        return out

    def words(self) -> np.ndarray:
        """The compressed words (uint32), everything needed to pop what was pushed."""
        return self._coder.get_compressed()

    def num_bits(self) -> int:
        return int(self._coder.num_bits())

    def valid_bits(self) -> int:
        return int(self._coder.num_valid_bits())

    def finished(self) -> bool:
        """Whether everything was popped: the guard (if any) comes off last and leaves nothing."""
        if self._guarded:
            if self.valid_bits() < self.floor:
                return False
            tail = self._coder.decode(_UNIFORM, np.array([1 << 16, 1 << 16], dtype=np.int32))
            head = self._coder.decode(_UNIFORM, np.array([2], dtype=np.int32))
            if (int(head[0]), *map(int, tail)) != GUARD:
                return False
        return bool(self._coder.is_empty())

    def _check_not_dry(self) -> None:
        if self._decoding and self._guarded and self.valid_bits() < self.floor:
            raise FormatError("file is corrupt (its payload ran out before decoding ended)")

    def _note_floor(self) -> None:
        if not self._decoding and self._guarded:
            self.floor = min(self.floor, self.valid_bits())


class SamplingStack:
    """Stands in for a Stack when only the information content matters (the coding ELBO):
    pops draw from the tables with a seeded generator, pushes are discarded."""

    def __init__(self, seed: int = 0):
        self._rng = np.random.default_rng(seed)

    def push(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        pass

    def pop(self, freqs: np.ndarray) -> np.ndarray:
        u = self._rng.integers(0, 1 << PRECISION, size=len(freqs))
        return (np.cumsum(freqs, axis=-1) <= u[:, None]).sum(axis=-1).astype(np.int64)

    def push_uniform(self, symbols: np.ndarray, k: int) -> None:
        pass

    def pop_uniform(self, n: int, k: int) -> np.ndarray:
        return self._rng.integers(0, k, size=n).astype(np.int64)


def _weights(freqs: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    # constriction adds 1 to every symbol and spreads the rest in proportion; see module doc.
    weights = np.subtract(freqs, 1, dtype=np.float64)
    return weights if rows is None else np.take(weights, rows, axis=0)

