"""An append-only numpy array whose growth costs O(N) in total and little memory beyond its data.

Appends that do not fit the buffer are queued as chunks and joined only when the array is read, with
25% headroom for the next live appends. A bulk load (many appends, no reads) therefore never holds the
2x slack of doubling growth, and a live run (a read after every few appends) appends in place. A bulk
load that knows about how much is coming reserves it first (:meth:`GrowableArray.reserve`): its appends
are then copied straight into place and each appended piece can be freed at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HEADROOM = 1.25


class GrowableArray:
    """Append-only 1-D array; ``view`` is the filled part, valid until the next append."""

    __slots__ = ("_buf", "_chunks", "_filled", "_n")

    def __init__(self, dtype: npt.DTypeLike = np.float64) -> None:
        self._buf = np.empty(0, dtype=dtype)
        self._filled = 0  # elements of _buf in use
        self._chunks: list[np.ndarray] = []
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def extend(self, values: np.ndarray) -> None:
        n = len(values)
        if not self._chunks and self._filled + n <= len(self._buf):
            self._buf[self._filled : self._filled + n] = values
            self._filled += n
        else:
            self._chunks.append(np.asarray(values, dtype=self._buf.dtype))
        self._n += n

    def reserve(self, n: int) -> None:
        """Room for ``n`` elements in all (no-op if there is already), so that appends up to there copy
        into place: no chunks to join later, and no second copy of the data alive while they join."""
        if n <= max(len(self._buf), self._n):
            return
        filled = self.view
        buf = np.empty(n, dtype=self._buf.dtype)
        buf[: self._n] = filled
        self._buf, self._filled = buf, self._n

    @property
    def view(self) -> np.ndarray:
        if self._chunks:
            joined = np.empty(int(self._n * HEADROOM) + 16, dtype=self._buf.dtype)
            joined[: self._filled] = self._buf[: self._filled]
            at = self._filled
            for chunk in self._chunks:
                joined[at : at + len(chunk)] = chunk
                at += len(chunk)
            self._buf, self._filled, self._chunks = joined, at, []
        return self._buf[: self._n]

    @property
    def nbytes(self) -> int:
        return int(self._buf.nbytes + sum(c.nbytes for c in self._chunks))
