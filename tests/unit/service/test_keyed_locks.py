"""Per-session locks: first come, first served, and no lock kept once a session is idle."""

from __future__ import annotations

import asyncio

from service.sessions import KeyedLocks


def test_waiters_run_in_arrival_order_and_table_empties() -> None:
    async def scenario() -> list[int]:
        locks = KeyedLocks()
        order: list[int] = []

        async def frame(i: int) -> None:
            async with locks.hold("s"):
                await asyncio.sleep(0.001 * (5 - i))  # earlier frames take longer
                order.append(i)

        await asyncio.gather(*(frame(i) for i in range(5)))
        assert len(locks) == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]
