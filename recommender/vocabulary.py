"""Id vocabularies: external string ids <-> dense row/column indices.

A vocabulary is stored as a plain unicode ``.npy`` array, so it loads without
unpickling and travels inside every model folder.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .errors import UnknownIdError


class IdVocabulary:
    """An ordered set of string ids; position in the set is the index."""

    def __init__(self, ids: Iterable[str]):
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        if ids.size == 0:
            ids = np.array([], dtype="<U1")
        if ids.dtype.kind != "U":
            raise TypeError("ids must be strings; cast them explicitly (ids are never cast silently)")
        self.ids = ids
        self._index = {value: i for i, value in enumerate(ids.tolist())}
        if len(self._index) != len(ids):
            raise ValueError("vocabulary ids must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external_id: str) -> bool:
        return external_id in self._index

    def index(self, external_id: str) -> int:
        """The index of one id; raises UnknownIdError when absent."""
        try:
            return self._index[external_id]
        except KeyError:
            raise UnknownIdError(f"unknown id {external_id!r}") from None

    def get(self, external_id: str, default: int = -1) -> int:
        return self._index.get(external_id, default)

    def lookup(self, external_ids: Iterable[str]) -> np.ndarray:
        """Indices of many ids, -1 where an id is unknown."""
        get = self._index.get
        return np.fromiter((get(i, -1) for i in external_ids), dtype=np.int64)

    def extended(self, new_ids: Iterable[str]) -> IdVocabulary:
        """A vocabulary with ``new_ids`` appended after the existing ones (existing indices keep)."""
        extra = [i for i in dict.fromkeys(new_ids) if i not in self._index]
        if not extra:
            return self
        return IdVocabulary(np.concatenate([self.ids, np.asarray(extra, dtype=str)]))
