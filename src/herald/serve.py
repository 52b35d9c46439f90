"""``herald serve``: the embedded shape in one process (API + an agent per host) under uvicorn."""

from __future__ import annotations

import gc
import logging
import sys

import uvicorn
from oslo_config import cfg
from sqlalchemy.engine import make_url

from herald.adapters.sql.schema_version import url_is_current
from herald.api.app import create_app
from herald.bootstrap import build_embedded
from herald.config import Settings

logger = logging.getLogger(__name__)


def uvicorn_options() -> dict[str, object]:
    """The server stack options (the benchmark's hello-world app uses the same)."""
    return {
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "lifespan": "on",
        "log_level": "info",
        "server_header": False,
    }


def ensure_schema(url: str) -> None:
    """Create or upgrade the schema if needed (alembic is only loaded then)."""
    if not url_is_current(url):
        from herald.adapters.sql.migrate import upgrade

        upgrade(url)


def freeze_start_up_heap() -> None:
    """Keep the cyclic collector off what start-up built (libraries, schemas, the app), which never
    becomes garbage: collections under load then stay short, and cost less CPU."""
    gc.collect()
    gc.freeze()


def serve_embedded(settings: Settings, conf: cfg.ConfigOpts) -> None:
    # NOTE: the writer thread and the event loop share the GIL; hand it over every 0.5 ms
    # instead of 5 ms so a request never waits long behind a database pass.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ensure_schema(settings.database_url)
    # NOTE: the event loop and the writer thread share the GIL; hand it over every 1 ms rather
    # than 5 ms, so that a request is not held up by a database pass's Python work.
    sys.setswitchinterval(0.001)
    deps = build_embedded(settings)
    app = create_app(deps, conf)
    freeze_start_up_heap()
    logger.info(
        "Herald embedded: http://%s:%s, database %s, hosts %s, auth %s",
        settings.listen,
        settings.port,
        make_url(settings.database_url).render_as_string(hide_password=True),
        ",".join(settings.hosts),
        settings.auth_strategy,
    )
    uvicorn.run(app, host=settings.listen, port=settings.port, **uvicorn_options())  # type: ignore[arg-type]
