"""SQLite's WAL checkpoints on a thread of their own.

By default SQLite checkpoints inside whichever commit crosses 1000 WAL pages: that commit
then copies pages into the database file and, with ``synchronous=FULL``, fsyncs it, while
every request of its pass waits. The embedded shape turns automatic checkpoints off on its
connections and runs passive ones here, which never block a writer.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

logger = logging.getLogger(__name__)


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, *, interval: float = 1.0) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="herald-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.checkpoint()

    def checkpoint(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except OperationalError as exc:
            # NOTE: busy or locked: a checkpoint is only ever deferred, the next one catches up.
            logger.debug("WAL checkpoint deferred: %s", exc)
        except Exception:
            logger.exception("WAL checkpoint failed; the next one will retry")

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.checkpoint()
