"""An open-loop HTTP/1.1 load generator for the cluster benchmark, light on the CPU it shares.

httpx spends milliseconds of CPU per request; on a small machine that is CPU taken from the
processes being measured. This sends pre-encoded requests on keep-alive connections and reads
only the status line, the headers it needs and the body's length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

# A keep-alive connection idle longer than this is not used again: the server may be closing it
# (uvicorn's keep-alive timeout is 5 s) and a request written into that close would be lost.
IDLE_REUSE_S = 2.0


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, read its whole answer; returns its status code and body."""
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
        body = await self.reader.readexactly(length) if length else b""
        return status, body

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


@dataclass(frozen=True, slots=True)
class Answers:
    """Each request's (status, body), in request order (status 0: the connection broke), and when
    the last request went out and the last answer came in, in seconds from the first request."""

    answers: list[tuple[int, bytes]]
    sending_seconds: float
    seconds: float


async def send_open_loop(
    url: str, requests: Sequence[bytes], *, interval: float, max_connections: int = 256
) -> Answers:
    """Send ``requests[n]`` at ``n * interval`` seconds whether or not earlier ones were answered
    (a new connection when every open one is busy, at most ``max_connections``)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    idle: list[tuple[float, _Connection]] = []  # (when it was last used, the connection)
    room = asyncio.Semaphore(max_connections)
    answers: list[tuple[int, bytes]] = [(0, b"")] * len(requests)

    async def one(n: int) -> None:
        async with room:
            connection = None
            while idle and connection is None:
                used, connection = idle.pop()
                if time.monotonic() - used > IDLE_REUSE_S:
                    connection.close()
                    connection = None
            try:
                if connection is None:
                    reader, writer = await asyncio.open_connection(host, port)
                    connection = _Connection(reader, writer)
                answers[n] = await connection.exchange(requests[n])
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                if connection is not None:
                    connection.close()
                return
            idle.append((time.monotonic(), connection))

    start = time.monotonic()
    tasks = []
    for n in range(len(requests)):
        delay = start + n * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    sending = time.monotonic() - start
    await asyncio.gather(*tasks)
    seconds = time.monotonic() - start
    for _, connection in idle:
        connection.close()
    return Answers(answers, sending, seconds)
