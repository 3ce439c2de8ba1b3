"""The webhook benchmark's sender in a process of its own (as Telegram is): posts the updates
of a JSON file to the webhook route, at most N in flight, and prints the rate and each
update's seconds as JSON. Run by bench/bot.py:

    python -m bench.bot_sender URL SECRET_HEADER SECRET FILE IN_FLIGHT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp


async def main(url: str, header: str, secret: str, bodies: list[str], in_flight: int) -> None:
    headers = {header: secret, "Content-Type": "application/json"}
    gate = asyncio.Semaphore(in_flight)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

        async def one(body: str) -> float:
            async with gate:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"the webhook answered {response.status}")
                return time.perf_counter() - started

        started = time.perf_counter()
        times = await asyncio.gather(*(one(body) for body in bodies))
        elapsed = time.perf_counter() - started
    print(json.dumps({"rate": len(bodies) / elapsed, "times": times}))


if __name__ == "__main__":
    url, header, secret, path, in_flight = sys.argv[1:6]
    with open(path, encoding="utf-8") as file:
        updates = [json.dumps(update) for update in json.load(file)]
    asyncio.run(main(url, header, secret, updates, int(in_flight)))
