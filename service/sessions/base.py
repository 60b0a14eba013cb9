"""The session-store contract: versioned blobs with compare-and-set, a TTL and a size cap.

A session's TTA state is opaque bytes here (the engine encodes it). Every write names the version
it was derived from; a write based on an older version fails, so two replicas adapting one session
never overwrite each other's steps: the loser re-reads and re-applies its frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SessionRecord:
    version: int  # >= 1; 0 means "absent" in compare_and_set
    blob: bytes


class SessionStore(Protocol):
    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None; renews its TTL (a session expires after `ttl` without use)."""
        ...

    async def compare_and_set(self, session_id: str, expected_version: int, blob: bytes) -> int | None:
        """Store `blob` if the stored version is `expected_version` (0: no record) and refresh the TTL.

        Returns the new version, or None when another writer got there first. Raises
        `SessionTooLargeError` above the size cap and `StoreUnavailableError` when unreachable.
        """
        ...

    async def delete(self, session_id: str) -> bool: ...

    async def ping(self) -> None:
        """Raise `StoreUnavailableError` unless the store answers."""
        ...

    async def close(self) -> None: ...
