"""``budget.upstream_slot``: a free slot is taken at once, a held one is waited for until the
operation's deadline, and past the deadline nothing is taken (``BrokerBusy``: nothing was sent)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.brokers import budget
from gateway.domain.errors import BrokerBusy


async def test_a_free_slot_is_taken_a_held_one_waited_for_and_none_past_the_deadline() -> None:
    semaphore = asyncio.Semaphore(1)
    loop = asyncio.get_running_loop()
    slots, deadline = budget.slots.set((semaphore,)), budget.deadline.set(loop.time() + 5)
    try:
        async with budget.upstream_slot():
            assert semaphore.locked()
            budget.deadline.set(loop.time() + 0.05)
            with pytest.raises(BrokerBusy, match="too many"):  # the only slot is held until the deadline
                async with budget.upstream_slot():
                    pytest.fail("entered without a slot")
        assert not semaphore.locked()
        budget.deadline.set(None)  # no deadline: a free slot is taken
        async with budget.upstream_slot():
            assert semaphore.locked()
        budget.deadline.set(loop.time() - 1)
        with pytest.raises(BrokerBusy, match="too many"):  # past the deadline even a free slot is not taken
            async with budget.upstream_slot():
                pytest.fail("entered past the deadline")
        assert not semaphore.locked()
    finally:
        budget.deadline.reset(deadline)
        budget.slots.reset(slots)
