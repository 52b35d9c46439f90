"""Helpers for tests on the RabbitMQ node of scripts/test-services."""

from __future__ import annotations

from collections.abc import Iterable

import aio_pika

from herald.adapters.bus.rabbit import queue_name


async def delete_queues(url: str, hosts: Iterable[str]) -> None:
    """Delete the queues of these hosts (the node is shared by every test run)."""
    connection = await aio_pika.connect(url, timeout=30)
    async with connection:
        channel = await connection.channel()
        for host in hosts:
            await channel.queue_delete(queue_name(host))
