"""Vectorised look-up of text ids: a hash table probed with whole-array numpy operations.

``np.searchsorted`` on an array of strings compares strings one pair at a time (about 15 ms
for 65,536 look-ups in 9,724 ids here), and a Python dict needs a Python object per id. Here
each id's fixed-width UTF-32 code units are hashed into a uint64 (one integer matrix-vector
product), the hash picks a slot of an open-addressing table (at most half full), and a
candidate is accepted only when its stored string equals the query, so a hash collision can
never give a wrong index (about 3x faster than ``searchsorted`` at 65,536 look-ups).
"""

from __future__ import annotations

import numpy as np

#: Odd 64-bit multipliers, one per 8-byte word of an id (ids up to 128 characters hash whole;
#: longer ones hash their first 128, and the string comparison still decides).
_WORDS = 64


def _splitmix64(seed: int, count: int) -> list[int]:
    """``count`` well-mixed 64-bit numbers (no numpy.random: importing it costs ~5 MB RSS)."""
    out = []
    state = seed
    mask = (1 << 64) - 1
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out.append(z ^ (z >> 31))
    return out


_MULTIPLIERS = np.array([z | 1 for z in _splitmix64(0x6D6678, _WORDS)], dtype=np.uint64)
_MIX = np.uint64(0x9E3779B97F4A7C15)
#: Queries per pass.
_PIECE = 1 << 13


def _hash(text: np.ndarray) -> np.ndarray:
    """uint64 hashes of a ``<U`` array's code units: a multiply-sum of its 8-byte words (one
    integer matrix-vector product), then a xorshift-multiply finish to mix the low bits."""
    width = text.dtype.itemsize
    n = text.shape[0]
    raw = np.ascontiguousarray(text).view(np.uint8).reshape(n, width)
    if width % 8:
        padded = np.zeros((n, width + 8 - width % 8), dtype=np.uint8)
        padded[:, :width] = raw
        raw = padded
    words = raw.view(np.uint64)[:, :_WORDS]
    hashes = words @ _MULTIPLIERS[: words.shape[1]]
    hashes ^= hashes >> np.uint64(29)
    hashes *= _MIX
    hashes ^= hashes >> np.uint64(32)
    return hashes


class TextIndex:
    """Sorted distinct text ids -> their positions, looked up a whole array at a time."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.ascontiguousarray(ids, dtype=f"<U{max(1, ids.dtype.itemsize // 4)}")
        n = self.ids.shape[0]
        size = 1 << max(4, int(2 * n).bit_length())  # at least twice the ids: short probes
        self.mask = np.uint64(size - 1)
        self.hashes = _hash(self.ids)
        slots = np.full(size, -1, dtype=np.int64)
        pending = np.arange(n, dtype=np.int64)
        position = self.hashes & self.mask
        while pending.size:
            place = position[pending].astype(np.int64)
            free = slots[place] < 0
            # Among ids wanting the same free slot the first takes it; the rest probe on.
            candidates = pending[free]
            _, first = np.unique(place[free], return_index=True)
            winners = candidates[first]
            slots[position[winners].astype(np.int64)] = winners
            placed = np.zeros(n, dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            position[pending] = (position[pending] + np.uint64(1)) & self.mask
        self.slots = slots
        # Each slot's id hash beside it: a probe is one gather, not two.
        self.slot_hashes = np.where(slots >= 0, self.hashes[np.maximum(slots, 0)], 0).astype(
            np.uint64
        )

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """int64 positions of the text ``values`` (a ``<U`` array), ``-1`` where unknown."""
        n = values.shape[0]
        out = np.full(n, -1, dtype=np.int64)
        if self.ids.shape[0] == 0:
            return out
        # Pieces keep the temporaries (strings are 4 bytes a character) small: fresh large
        # arrays cost more in page faults than the comparisons themselves.
        for start in range(0, n, _PIECE):
            stop = min(n, start + _PIECE)
            out[start:stop] = self._piece(values[start:stop])
        return out

    def _piece(self, values: np.ndarray) -> np.ndarray:
        # Hashing needs the ids' width: shorter queries are padded, longer ones cut (a cut
        # query can only find a wrong candidate, which the final comparison rejects).
        query = values if values.dtype == self.ids.dtype else values.astype(self.ids.dtype)
        hashes = _hash(query)
        position = (hashes & self.mask).astype(np.intp)
        candidate = self.slots.take(position)
        hit = (self.slot_hashes.take(position) == hashes) & (candidate >= 0)
        out = np.where(hit, candidate, -1)
        # The few that met another id's slot probe on (the table is at most half full).
        active = np.flatnonzero(~hit & (candidate >= 0))
        position = position[active]
        mask = int(self.mask)
        while active.size:
            position = (position + 1) & mask
            candidate = self.slots.take(position)
            hit = (self.slot_hashes.take(position) == hashes[active]) & (candidate >= 0)
            out[active[hit]] = candidate[hit]
            going = ~hit & (candidate >= 0)
            active, position = active[going], position[going]
        # Accept a candidate only if its string is the query (-1 compares the last id, and
        # is dropped by the mask).
        wrong = np.flatnonzero((self.ids.take(out) != values) & (out >= 0))
        if wrong.size:
            # Equal 64-bit hashes of different strings (or a cut query): settle them exactly.
            out[wrong] = [self._exact(value) for value in values[wrong].tolist()]
        return out

    def _exact(self, value: str) -> int:
        position = int(np.searchsorted(self.ids, value))
        if position < self.ids.shape[0] and self.ids[position] == value:
            return position
        return -1
