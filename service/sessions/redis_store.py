"""Sessions in Redis (`redis.asyncio`): one hash per session, {v: version, b: blob}, with a TTL.

Compare-and-set is one Lua script, atomic on the server, so any number of replicas can share a
session. The client never retries on its own (the gateway's breaker decides when to try again).

A session's first write takes a random version (below 2^40) and each later write adds one. Versions
that restarted at 1 would let a write prepared before a reset (DELETE) or an expiry land on the new
session once that reached the same version (ABA): the reset undone, the new session's step lost.
"""

from __future__ import annotations

import secrets

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from service.errors import SessionTooLargeError, StoreUnavailableError
from service.sessions.base import SessionRecord

_CAS = """
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then cur = '0' end
if cur ~= ARGV[1] then return -1 end
local nv
if cur == '0' then nv = tonumber(ARGV[4]) else nv = tonumber(cur) + 1 end
redis.call('HSET', KEYS[1], 'v', nv, 'b', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return nv
"""


def _first_version() -> int:
    """A new session's version: random, so that no stale write's expected version matches it (kept
    below 2^40, where Lua's number-to-string conversion (%.14g) and JSON clients stay exact)."""
    return 1 + secrets.randbelow(2**40)


class RedisSessionStore:
    def __init__(
        self,
        url: str,
        *,
        ttl_s: float,
        max_bytes: int,
        key_prefix: str = "mcga:session:",
        op_timeout_s: float = 0.25,
        connect_timeout_s: float = 0.5,
    ) -> None:
        self.max_bytes, self.ttl_ms, self.prefix = max_bytes, max(1, int(ttl_s * 1000)), key_prefix
        self._redis = Redis.from_url(
            url,
            socket_timeout=op_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._cas = self._redis.register_script(_CAS)

    def _key(self, session_id: str) -> str:
        return self.prefix + session_id

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, its lifetime renewed: a session in use (read-only frames too) does not expire."""
        key = self._key(session_id)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(key, ["v", "b"])
                pipe.pexpire(key, self.ttl_ms)
                (version, blob), _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis get failed: {exc}") from exc
        if version is None or blob is None:
            return None
        return SessionRecord(int(version), blob if isinstance(blob, bytes) else blob.encode())

    async def compare_and_set(self, session_id: str, expected_version: int, blob: bytes) -> int | None:
        if len(blob) > self.max_bytes:
            raise SessionTooLargeError(f"session state of {len(blob)} bytes > cap {self.max_bytes}")
        try:
            result = await self._cas(
                keys=[self._key(session_id)], args=[expected_version, blob, self.ttl_ms, _first_version()]
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis compare-and-set failed: {exc}") from exc
        new_version = int(result)
        return None if new_version < 0 else new_version

    async def delete(self, session_id: str) -> bool:
        try:
            return bool(await self._redis.delete(self._key(session_id)))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis delete failed: {exc}") from exc

    async def ttl_s(self, session_id: str) -> float | None:
        """Remaining lifetime of a session (None when absent): for inspection and tests."""
        try:
            ms = await self._redis.pttl(self._key(session_id))
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis pttl failed: {exc}") from exc
        return None if ms < 0 else ms / 1000.0

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"redis ping failed: {exc}") from exc

    async def close(self) -> None:
        await self._redis.aclose()
