"""The bot's send limiter on a virtual clock: whatever the order of chats and however late
the sender wakes, no second ever holds more than 30 messages and no chat gets two within a
second — what Telegram answers with 429 otherwise."""

from __future__ import annotations

import itertools
import random

import pytest

from crm.bot.sender import SendLimiter


class VirtualClock:
    def __init__(self, *, late_by: float = 0.0, seed: int = 7) -> None:
        self.now = 1000.0
        self.late_by = late_by
        self.rng = random.Random(seed)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # A sender wakes on time or, on a loaded machine, up to ``late_by`` seconds late.
        self.now += seconds + self.rng.uniform(0, self.late_by)


def violations(departures: list[tuple[float, int]]) -> tuple[int, int]:
    """(seconds holding more than 30 messages, pairs to one chat less than 1 s apart)."""
    times = sorted(moment for moment, _ in departures)
    crowded = sum(1 for index in range(len(times) - 30) if times[index + 30] - times[index] < 1.0)
    last: dict[int, float] = {}
    close = 0
    for moment, chat in sorted(departures):
        if chat in last and moment - last[chat] < 1.0:
            close += 1
        last[chat] = moment
    return crowded, close


@pytest.mark.parametrize("late_by", [0.0, 0.05, 0.3])
async def test_limits_hold_for_on_time_and_late_senders(late_by: float) -> None:
    clock = VirtualClock(late_by=late_by)
    limiter = SendLimiter(clock=clock, sleep=clock.sleep)
    rng = random.Random(11)
    chats = [rng.randrange(100) for _ in range(600)]
    departures = []
    started = clock.now
    for chat in chats:
        await limiter.wait_turn(chat)
        departures.append((clock.now, chat))
    assert violations(departures) == (0, 0)
    assert len(departures) == 600 and clock.now > started


async def test_many_chats_go_out_near_thirty_a_second() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(clock=clock, sleep=clock.sleep)
    started = clock.now
    departures = []
    for index in range(600):  # each chat's next message comes 100 messages later
        await limiter.wait_turn(index % 100)
        departures.append((clock.now, index % 100))
    assert violations(departures) == (0, 0)
    # Telegram's 30/s less the limiter's margin.
    assert 25 < len(departures) / (clock.now - started) <= 30


async def test_one_chat_is_one_message_a_second() -> None:
    clock = VirtualClock()
    limiter = SendLimiter(clock=clock, sleep=clock.sleep)
    departures = []
    for _ in range(5):
        await limiter.wait_turn(42)
        departures.append((clock.now, 42))
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(departures)]
    assert all(gap >= 1.0 for gap in gaps) and max(gaps) < 1.5
