"""The fake virt driver's machines on SQL (``fake_machines``): one row per host and server."""

from __future__ import annotations

import functools
import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Executable, Insert, and_, delete, event, select, update

from herald.adapters.sql.dialect_insert import dialect_insert
from herald.adapters.sql.driver_sql import placeholders, statement
from herald.adapters.sql.engine import READ_ONLY_OPTION
from herald.adapters.sql.tables import fake_machines
from herald.domain.errors import DriverError
from herald.domain.model import PowerState

logger = logging.getLogger(__name__)

_fm = fake_machines
# How long a driver call waits for its write; a database that slow fails the call.
WRITE_TIMEOUT_S = 30.0
# Writes waiting for the persisting thread (a driver call waits for its own, so few ever queue).
MAX_PENDING_WRITES = 1024
_GONE = None  # the pending state of a machine being removed
# Machines per IN list of a batched read (well under the databases' bound-parameter limits).
MAX_IN_LIST = 1000


@functools.cache
def _upsert(dialect_name: str) -> Insert:
    stmt = dialect_insert(dialect_name)(_fm)
    result: Insert = stmt.on_conflict_do_update(
        index_elements=[_fm.c.host, _fm.c.server_uuid], set_={"power_state": stmt.excluded.power_state}
    )
    return result


@dataclass(frozen=True, slots=True)
class _Write:
    number: int
    server_uuid: str
    stmt: Executable
    params: dict[str, Any]
    done: Future[None]


class SqlFakeMachines:
    """The machines of one host's fake driver, kept across restarts like a real hypervisor's.

    Each write is a short transaction of its own, run by one thread per store, in the order the
    driver made them; the driver call waits for it. A driver call made by a thread that already
    holds a connection of the engine (inside a unit of work) does not wait: on SQLite its write
    would wait for that thread's own transaction. Reads see such pending writes at once.

    :param engine: the process's engine.
    :param host: the compute host whose machines these are.
    """

    # NOTE: hand-written: a long IN list is then not rendered again, bind by bind, at every call.
    _POWERS_SQL = "SELECT server_uuid, power_state FROM fake_machines WHERE host = ? AND server_uuid IN ({})"

    def __init__(self, engine: Engine, host: str) -> None:
        self._engine = engine
        self._host = host
        self._held = threading.local()  # .count: connections of the engine the current thread holds
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[int, PowerState | None]] = {}  # server -> (write number, state)
        self._written = 0
        self._queue: deque[_Write] = deque()
        self._upsert = _upsert(engine.dialect.name)
        self._worker: threading.Thread | None = None
        event.listen(engine, "checkout", self._checked_out)
        event.listen(engine, "checkin", self._checked_in)

    def _checked_out(self, *_args: object) -> None:
        self._held.count = getattr(self._held, "count", 0) + 1

    def _checked_in(self, *_args: object) -> None:
        self._held.count = max(0, getattr(self._held, "count", 0) - 1)

    # --- MachineStore ----------------------------------------------------------
    def power(self, server_uuid: str) -> PowerState | None:
        """:returns: the machine's power state, or None when the host has no such machine."""
        with self._lock:
            if server_uuid in self._pending:
                return self._pending[server_uuid][1]
        stmt = select(_fm.c.power_state).where(self._key(server_uuid))
        with self._engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as conn, conn.begin():
            value = conn.execute(stmt).scalar()
        return None if value is None else PowerState(value)

    def powers(self, server_uuids: Sequence[str]) -> dict[str, PowerState]:
        """The power states of those of these machines the host has: one query per ``MAX_IN_LIST`` machines."""
        with self._lock:
            pending = {uuid: self._pending[uuid][1] for uuid in server_uuids if uuid in self._pending}
        found: dict[str, PowerState] = {}
        wanted = [uuid for uuid in server_uuids if uuid not in pending]
        if wanted:
            with self._engine.connect().execution_options(**{READ_ONLY_OPTION: True}) as conn, conn.begin():
                for start in range(0, len(wanted), MAX_IN_LIST):
                    chunk = wanted[start : start + MAX_IN_LIST]
                    sql = statement(conn, self._POWERS_SQL.format(placeholders(len(chunk))))
                    rows = conn.exec_driver_sql(sql, (self._host, *chunk))
                    found.update((uuid, PowerState(power)) for uuid, power in rows)
        # NOTE: a write still on its way wins over what the database has, as in power().
        found.update((uuid, power) for uuid, power in pending.items() if power is not None)
        return found

    def set_power(self, server_uuid: str, power: PowerState) -> None:
        """Record the machine's power state, creating the machine if it has none."""
        params = {"host": self._host, "server_uuid": server_uuid, "power_state": int(power)}
        self._write(server_uuid, power, self._upsert, params)

    def update_power(self, server_uuid: str, power: PowerState) -> bool:
        """Change an existing machine's power state; :returns: False when there is no such machine."""
        if self.power(server_uuid) is None:
            return False
        stmt = update(_fm).where(self._key(server_uuid)).values(power_state=int(power))
        self._write(server_uuid, power, stmt, {})
        return True

    def remove(self, server_uuid: str) -> None:
        """Forget the machine (nothing happens when there is none)."""
        self._write(server_uuid, _GONE, delete(_fm).where(self._key(server_uuid)), {})

    def _key(self, server_uuid: str) -> ColumnElement[bool]:
        return and_(_fm.c.host == self._host, _fm.c.server_uuid == server_uuid)

    # --- the persisting thread -------------------------------------------------
    def _write(self, server_uuid: str, state: PowerState | None, stmt: Executable, params: dict[str, Any]) -> None:
        done: Future[None] = Future()
        with self._lock:
            if len(self._queue) >= MAX_PENDING_WRITES:
                raise DriverError(f"Host {self._host}: too many machine changes waiting to be stored")
            self._written += 1
            self._pending[server_uuid] = (self._written, state)
            self._queue.append(_Write(self._written, server_uuid, stmt, params, done))
            if self._worker is None:
                self._worker = threading.Thread(target=self._persist, name=f"fake-machines-{self._host}", daemon=True)
                self._worker.start()
        if getattr(self._held, "count", 0) == 0:
            try:
                done.result(timeout=WRITE_TIMEOUT_S)
            except Exception as exc:
                # NOTE: to compute, the store is the hypervisor: its failure is the driver's.
                raise DriverError(
                    f"Host {self._host}: the machine of instance {server_uuid} could not be stored"
                ) from exc

    def _persist(self) -> None:
        """Run the queued writes in order; the thread ends when none is left."""
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                write = self._queue.popleft()
            try:
                with self._engine.begin() as conn:
                    conn.execute(write.stmt, write.params)
            except Exception as exc:  # the persisting loop's boundary: the waiting call gets the error
                logger.exception("Fake machine %s on host %s: write failed", write.server_uuid, self._host)
                write.done.set_exception(exc)
            else:
                write.done.set_result(None)
            with self._lock:
                if self._pending.get(write.server_uuid, (0, None))[0] == write.number:
                    del self._pending[write.server_uuid]

    def flush(self, timeout: float = WRITE_TIMEOUT_S) -> None:
        """Wait until every write made so far is in the database (for tests and orderly stops)."""
        with self._lock:
            worker = self._worker
        if worker is not None:
            worker.join(timeout)
