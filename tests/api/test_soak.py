"""A bounded soak on loopback: 256 concurrent streaming clients for KINFER_SOAK_SECONDS (60 by
default). No errors but deliberate 429s; every stream that starts ends with [DONE]; RSS and open
file descriptors stay flat."""
import asyncio
import json
import os
import random
import time

import httpx

from conftest import STORIES, Server

CLIENTS = 256
SECONDS = float(os.environ.get("KINFER_SOAK_SECONDS", "60"))


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


async def client_loop(url, deadline, stats, rng):
    async with httpx.AsyncClient(timeout=120) as http:
        while time.time() < deadline:
            body = {"prompt": rng.choice(["Once upon a time", "Lily was", "The cat sat on the"]),
                    "max_tokens": rng.randint(8, 48), "stream": True, "temperature": 0.8,
                    "ignore_eos": True}
            try:
                async with http.stream("POST", url + "/v1/completions", json=body) as r:
                    if r.status_code == 429:
                        stats["429"] += 1
                        await r.aread()
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")) * rng.random())
                        continue
                    if r.status_code != 200:
                        stats["errors"].append(f"status {r.status_code}: {await r.aread()}")
                        continue
                    last, tokens = None, 0
                    async for line in r.aiter_lines():
                        if not line:
                            continue
                        last = line
                        if line.startswith("data: {"):
                            chunk = json.loads(line[6:])
                            if "error" in chunk:
                                stats["errors"].append(chunk)
                            tokens += 1
                    if last != "data: [DONE]":
                        stats["errors"].append(f"stream ended with {last!r}")
                    stats["ok"] += 1
                    stats["chunks"] += tokens
            except Exception as e:  # noqa: BLE001
                stats["errors"].append(repr(e))


def test_soak_256_streaming_clients():
    s = Server(STORIES, "--max-num-seqs", "64", "--max-queue-len", "160", "--kv-cache-memory",
               "64MiB", "--no-access-log")
    try:
        pid = s.proc.pid
        stats = {"ok": 0, "429": 0, "chunks": 0, "errors": []}
        samples = []

        async def main():
            deadline = time.time() + SECONDS
            tasks = [asyncio.create_task(client_loop(s.url, deadline, stats, random.Random(i)))
                     for i in range(CLIENTS)]
            start = time.time()
            while time.time() < deadline:
                await asyncio.sleep(min(5, SECONDS / 6))
                samples.append((time.time() - start, rss_kib(pid), fds(pid)))
            await asyncio.gather(*tasks)

        asyncio.run(main())
        assert not stats["errors"], stats["errors"][:5]
        assert stats["ok"] > CLIENTS, stats
        assert stats["429"] > 0, "the queue limit was never reached"
        # Flat: after warm-up, RSS grows by less than 32 MiB and file descriptors by less than 32
        # over the rest of the run (256 open connections are already counted at warm-up).
        warm = samples[1]
        last = samples[-1]
        assert last[1] - warm[1] < 32 * 1024, samples
        assert last[2] - warm[2] < 32, samples
        # And once the clients are gone, the connections are closed.
        time.sleep(1)
        assert fds(pid) < warm[2] - CLIENTS // 2, (fds(pid), samples)
        print(f"soak: {stats['ok']} streams, {stats['chunks']} chunks, {stats['429']} x 429, "
              f"samples (s, RSS KiB, fds): {samples}")
    finally:
        assert s.stop() == 0
