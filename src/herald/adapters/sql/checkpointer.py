"""SQLite's WAL checkpoints on a thread of their own.

By default SQLite checkpoints inside whichever commit crosses 1000 WAL pages: that commit
then copies pages into the database file and, with ``synchronous=FULL``, fsyncs it, while
every request of its pass waits. The embedded shape turns automatic checkpoints off on its
connections and runs passive ones here, which never block a writer.

A checkpoint must run outside any transaction (inside one it fails with "database table is
locked"), so it goes through the raw DB-API connection, never a unit of work, whose begin takes
the write lock. A passive checkpoint can fall behind when readers keep old snapshots open; once
the log is past ``truncate_pages`` a truncating checkpoint (which waits for readers and briefly
holds writers back) brings it back to nothing.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

logger = logging.getLogger(__name__)

# 1000 pages of 4 KiB: SQLite's own automatic checkpoint threshold.
TRUNCATE_PAGES = 1000


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds until stopped."""

    def __init__(self, engine: Engine, *, interval: float = 1.0, truncate_pages: int = TRUNCATE_PAGES) -> None:
        self._engine = engine
        self._interval = interval
        self._truncate_pages = truncate_pages
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
        """One passive checkpoint, and a truncating one when the log has grown too long anyway."""
        try:
            busy, log_pages, _copied = self._pragma("PASSIVE")
            if log_pages > self._truncate_pages:
                busy, log_pages, _copied = self._pragma("TRUNCATE")
                if busy:
                    logger.warning("WAL checkpoint: readers kept the log (%d pages) from shrinking", log_pages)
        except Exception as exc:
            # NOTE: a checkpoint is only ever deferred (the next one catches up), but one that keeps
            # failing lets the WAL grow without bound: say so where operators look.
            logger.warning("WAL checkpoint failed; the next one will retry: %s", exc)

    def _pragma(self, mode: str) -> tuple[int, int, int]:
        conn = self._engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(f"PRAGMA wal_checkpoint({mode})")
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            conn.close()
        if row is None:
            return 0, 0, 0
        busy, log_pages, copied = (int(value) for value in row)
        return busy, log_pages, copied

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.checkpoint()
