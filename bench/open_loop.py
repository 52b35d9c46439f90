"""An open-loop HTTP/1.1 load generator for the cluster benchmark, light on the CPU it shares.

httpx spends milliseconds of CPU per request; on a small machine that is CPU taken from the
processes being measured. This sends pre-encoded requests on keep-alive connections and reads
only the status line, the headers it needs and the body's length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from urllib.parse import urlsplit


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole answer; returns the status code."""
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def encode_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One ``POST url`` request with ``body``, ready to write."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def send_open_loop(
    url: str, requests: Sequence[bytes], *, interval: float, max_connections: int = 256
) -> dict[int, int]:
    """Send ``requests[n]`` at ``n * interval`` seconds whether or not earlier ones were answered
    (a new connection when every open one is busy, at most ``max_connections``); returns the
    count of each status code (0: the connection broke)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[_Connection] = []
    opened = 0
    room = asyncio.Semaphore(max_connections)
    statuses: dict[int, int] = {}

    async def one(request: bytes) -> None:
        nonlocal opened
        async with room:
            connection = idle.pop() if idle else None
            if connection is None:
                reader, writer = await asyncio.open_connection(host, port)
                connection = _Connection(reader, writer)
                opened += 1
            try:
                status = await connection.exchange(request)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                connection.close()
                statuses[0] = statuses.get(0, 0) + 1
                return
            statuses[status] = statuses.get(status, 0) + 1
            idle.append(connection)

    start = time.monotonic()
    tasks = []
    for n, request in enumerate(requests):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(request)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return statuses
