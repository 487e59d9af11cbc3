"""A numpy array that grows by amortised doubling, so appending N points costs O(N) in total."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class GrowableArray:
    """Append-only 1-D array; ``view`` is the filled part, valid until the next append."""

    __slots__ = ("_buf", "_n")

    def __init__(self, dtype: npt.DTypeLike = np.float64, capacity: int = 64) -> None:
        self._buf = np.empty(max(1, capacity), dtype=dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def view(self) -> np.ndarray:
        return self._buf[: self._n]

    def extend(self, values: np.ndarray) -> None:
        needed = self._n + len(values)
        if needed > len(self._buf):
            grown = np.empty(max(needed, 2 * len(self._buf)), dtype=self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n : needed] = values
        self._n = needed

    @property
    def nbytes(self) -> int:
        return int(self._buf.nbytes)
