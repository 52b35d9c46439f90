"""The distributed shape's processes: ``herald api`` (N uvicorn workers) and ``herald agent --host H``.

Both read the same herald.conf: ``[DEFAULT] transport_url`` (RabbitMQ) joins them, ``[database]
connection`` (PostgreSQL) holds the state. Neither creates the schema: ``herald db upgrade`` does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys

import uvicorn
from oslo_config import cfg
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from herald.adapters.sql.schema_version import url_is_current
from herald.config import Settings, load_settings, new_conf
from herald.domain.errors import HeraldError

logger = logging.getLogger(__name__)

# How ``herald api`` tells its worker processes (fresh interpreters) which configuration to read,
# and the command line's overrides.
CONFIG_ENV = "HERALD_API_CONFIG"
# glibc's malloc reads this when a process starts: allocations of at least this many bytes get pages of
# their own, given back to the system when freed. A request of a hundred events has bodies and driver
# buffers of tens of KB; left in the heap (the default's threshold rises up to 32 MB), the freed ones
# stay as holes that the worker's small objects pin, and a worker kept about 4 MB more after such traffic.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s %(message)s"


class SchemaNotCurrent(SystemExit):
    pass


def require_schema(url: str) -> None:
    """:raises SchemaNotCurrent: the database is not at this version's schema (run ``herald db upgrade``)."""
    if not url_is_current(url):
        shown = make_url(url).render_as_string(hide_password=True)
        raise SchemaNotCurrent(f"The database {shown} is not at this Herald's schema: run `herald db upgrade` first")


def require_transport(settings: Settings) -> None:
    """:raises SystemExit: ``[DEFAULT] transport_url`` (or the TLS options) cannot carry the distributed
    shape's messages; the message names the problem, never the password."""
    from herald.bootstrap import build_rabbit_bus

    try:
        build_rabbit_bus(settings, role="check")  # parses and builds only: no connection yet
    except (ValueError, HeraldError, OSError) as exc:
        raise SystemExit(f"herald: {exc}") from None


def serve_api(settings: Settings, conf: cfg.ConfigOpts) -> None:
    """Run ``settings.workers`` API worker processes on ``settings.listen:port``; a worker that dies
    is replaced (uvicorn's supervisor)."""
    from herald.api.auth import make_authenticator
    from herald.serve import uvicorn_options

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # NOTE: refuse a configuration every worker would refuse, once, before starting any.
    require_transport(settings)
    require_schema(settings.database_url)
    make_authenticator(settings, conf)
    os.environ[CONFIG_ENV] = json.dumps(
        {"config_files": list(settings.config_files), "listen": settings.listen, "port": settings.port}
    )
    # NOTE: set before the workers start (fresh interpreters); an operator's own setting is kept.
    for name, value in MALLOC_ENV.items():
        os.environ.setdefault(name, value)
    logger.info(
        "Herald API: http://%s:%s, %d workers, database %s, auth %s",
        settings.listen,
        settings.port,
        settings.workers,
        make_url(settings.database_url).render_as_string(hide_password=True),
        settings.auth_strategy,
    )
    uvicorn.run(
        "herald.distributed:api_app",
        factory=True,
        host=settings.listen,
        port=settings.port,
        workers=settings.workers,
        **uvicorn_options(),  # type: ignore[arg-type]
    )


def api_app() -> Starlette:
    """The ASGI app of one API worker (uvicorn calls it in each worker process)."""
    from herald.api.app import create_app
    from herald.bootstrap import build_api_process
    from herald.serve import freeze_start_up_heap

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # NOTE: as in herald serve: the writer thread and the loop share the GIL; switch every 1 ms.
    sys.setswitchinterval(0.001)
    given = json.loads(os.environ[CONFIG_ENV])
    conf = new_conf()
    settings = load_settings(conf, config_files=given["config_files"])
    settings = dataclasses.replace(settings, listen=given["listen"], port=given["port"])
    app = create_app(build_api_process(settings), conf)
    freeze_start_up_heap()
    return app


def run_agent(settings: Settings, host: str) -> int:
    """``herald agent``: run ``host``'s agent until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    require_transport(settings)
    require_schema(settings.database_url)
    asyncio.run(_agent_main(settings, host))
    return 0


async def _agent_main(settings: Settings, host: str) -> None:
    from herald.bootstrap import build_agent_process, build_rabbit_bus, start_agent_process, stop_agent_process
    from herald.serve import freeze_start_up_heap

    # NOTE: as in the API: the writer thread and the loop share the GIL; switch every 1 ms.
    sys.setswitchinterval(0.001)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    bus = build_rabbit_bus(settings, role=f"agent-{host}")
    # NOTE: nothing reaches an agent but through its queue: wait for the broker (the bus logs a
    # WARNING at each attempt while it is away).
    while not await bus.connect():
        if stopping.is_set():
            await bus.close()
            return
    process = build_agent_process(settings, host, bus=bus)
    await start_agent_process(process)
    freeze_start_up_heap()
    logger.info(
        "Herald agent for host %s: database %s, RabbitMQ %s, driver %s",
        host,
        make_url(settings.database_url).render_as_string(hide_password=True),
        bus.where,
        settings.compute_driver,
    )
    try:
        await stopping.wait()
    finally:
        logger.info("Herald agent for host %s stopping", host)
        await stop_agent_process(process)
