"""Opening the database: file mode, pragmas, SQL functions, schema migrations.

Owns: the connection settings every process uses (WAL, synchronous=NORMAL,
busy timeout, checkpoint size) and those of the one writer (a bigger page
cache), creating the file with mode 0600, the SQL functions every connection
has (`event_raw`, `ip_in_network`), and the versioned schema
(`PRAGMA user_version`). Every other store module receives a connection from
here (a StoreConnection, which carries the connection's term and block
caches). Must not: parse logs or know about sources beyond their table rows.

Schema version 2 (DESIGN sections 3 and 4, sized for the 2x budget of
section 10): `events` holds the columns searched and sorted on, with the
low-cardinality text columns (CODED_COLUMNS) as codes into `terms`; the raw
line, `extra` and `ingested_at` live compressed in `raw_blocks` (see
`blocks.py`); the message is stored only where it is not the tail of the raw
line (otherwise the block keeps its offset in the raw line). FTS5 indexes the
message through the view `events_text`.
"""

from __future__ import annotations

import fcntl
import os
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import sqlite_utils

from soc_tui.store.blocks import BlockCache
from soc_tui.store.terms import Terms


class StoreError(Exception):
    """A database problem worth one clear line to the user (locked, corrupt, ...)."""


BUSY_TIMEOUT_MS = 5000
# Checkpoint the WAL every ~40 MB instead of SQLite's 4 MB: checkpointing that
# often cost ~10% of ingest (measured at 1M events). The WAL is cut back to
# JOURNAL_LIMIT_BYTES after a checkpoint that found it bigger (e.g. while a
# long reader held it).
WAL_AUTOCHECKPOINT_PAGES = 10000
JOURNAL_LIMIT_BYTES = 64 << 20
# The writer's page cache (KiB): the five secondary indexes take random
# inserts and outgrow SQLite's 2 MB default early; 16-32 MB gave ~5-10% more
# rows/s at 1M events (64 MB no more). Readers keep the default.
WRITER_CACHE_KIB = 32768

# The text columns of `events` stored as codes into `terms` (their values
# repeat: a few hosts, programs, actions, user names, browsers).
CODED_COLUMNS = (
    "host", "app", "level", "action", "outcome", "user", "target_user", "http_method",
    "user_agent",
)
# The raw line and the message of an events row `e`.
RAW_SQL = "event_raw(e.id)"
MESSAGE_SQL = "coalesce(e.message, event_message(e.id))"


class WriteLock:
    """The lock every writing connection to one database file holds around its
    write transactions: a mutex for the threads of this process, then an
    exclusive `flock` on the file `<db>-lock` for the other processes.

    Why: SQLite makes a writer that finds the database locked poll, sleeping
    up to 100 ms between tries. The event writer holds the database most of
    the time during a backfill, so another writer (the rule worker, in a
    process of its own; a TUI action) slept through most of its chances: the
    rule process spent 60% of a 1M-line backfill asleep there and finished
    its work 10 s after the events. Waiting on the lock instead hands the
    database over as soon as it is free. A writer that cannot open the lock
    file (a read-only directory) takes only the mutex, and SQLite's busy
    timeout still applies to it.
    """

    def __init__(self, path: Path) -> None:
        self._mutex = threading.Lock()
        self._path = Path(f"{path}-lock")
        self._fd: int | None = None
        self._tried = False

    def _file(self) -> int | None:
        if not self._tried:
            self._tried = True
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._fd = None
        return self._fd

    def __enter__(self) -> WriteLock:
        self._mutex.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


_WRITE_LOCKS: dict[str, WriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> WriteLock:
    """This process's WriteLock for the database file at `path` (one per file,
    shared by all its connections)."""
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(key)
        if lock is None:
            lock = _WRITE_LOCKS[key] = WriteLock(Path(key))
        return lock


class StoreConnection(sqlite3.Connection):
    """A connection with its caches of the `terms` table and of decoded raw
    blocks, and the process's write lock for its file (`write_lock`: take it
    around every write transaction)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.terms = Terms(self)
        self.blocks = BlockCache(self)
        self.write_lock: Any = threading.Lock()  # replaced by open_db with the file's WriteLock


T = TypeVar("T")
BUSY_RETRIES = 8


def write_transaction(conn: Any, action: Callable[[], T]) -> T:
    """Run `action` in one write transaction under the process's write lock,
    retrying with jittered backoff while another process holds the database
    beyond SQLite's own busy timeout, so an analyst never sees "database is
    locked" while a collector ingests. `action` must be safe to run again
    (its earlier attempt was rolled back)."""
    delay = 0.05
    for attempt in range(BUSY_RETRIES + 1):
        try:
            with conn.write_lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = action()
                    conn.execute("COMMIT")
                    return result
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if attempt == BUSY_RETRIES or ("locked" not in text and "busy" not in text):
                raise
        time.sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")


def open_db(
    path: str | os.PathLike[str], *, create: bool = True, writer: bool = False
) -> StoreConnection:
    """Open (creating with mode 0600 if allowed) and migrate the database at `path`.

    `writer=True` is for the one connection that ingests events (EventWriter, and
    the benchmark's reference limit, which must use the same settings)."""
    p = Path(path)
    if not create and not p.exists():
        raise StoreError(f"database not found: {p} (ingest or collect something first)")
    try:
        _create_private(p)
    except OSError as exc:
        raise StoreError(f"cannot create database {p}: {exc.strerror or exc}") from exc
    try:
        conn = sqlite3.connect(
            p, check_same_thread=False, isolation_level=None, factory=StoreConnection
        )
        conn.write_lock = _write_lock(p)
        _register_functions(conn)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if p.stat().st_size == 0:
            # A new file: let pruning give space back later. Must precede the
            # first write, WAL's included.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"could not switch {p} to WAL mode (got {mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_LIMIT_BYTES}")
        if writer:
            conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreError(_describe(exc, p)) from exc
    except StoreError as exc:
        raise StoreError(f"{p}: {exc}") from exc
    return conn


def _describe(exc: sqlite3.DatabaseError, p: Path) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"database is locked by another process: {p}"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"database file is corrupt or not a soc-tui database: {p} ({text})"
    if "unable to open" in text or "readonly" in text:
        return f"cannot open database {p}: {text}"
    return f"database error on {p}: {text}"


def _create_private(p: Path) -> None:
    """Create the database file with mode 0600 before SQLite touches it."""
    if p.parent and not p.parent.exists():
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not p.exists():
        fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        os.close(fd)


def _register_functions(conn: StoreConnection) -> None:
    from soc_tui.store.search import ip_in_network

    conn.create_function("ip_in_network", 2, ip_in_network, deterministic=True)
    # They read raw_blocks through the connection's block cache: not deterministic.
    conn.create_function("event_raw", 1, conn.blocks.raw)
    conn.create_function("event_message", 1, conn.blocks.message)


# --- migrations -------------------------------------------------------------


def _v1(conn: sqlite3.Connection) -> None:
    # Plain DDL: sqlite-utils' create() commits on its own, which would split
    # this migration's transaction.
    db = conn
    db.execute("CREATE TABLE sources (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT)")
    db.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            ingested_at INTEGER NOT NULL,
            source INTEGER,  -- sources.id; no FOREIGN KEY: it costs ~5% of ingest
            host TEXT, app TEXT, pid INTEGER, level TEXT,
            action TEXT, outcome TEXT, user TEXT, target_user TEXT,
            src_ip TEXT, src_port INTEGER,
            http_method TEXT, url TEXT, http_status INTEGER, bytes INTEGER,
            user_agent TEXT, referrer TEXT,
            message TEXT, raw TEXT NOT NULL,
            msg_off INTEGER,  -- message IS NULL: it is raw from this character on
            repeat INTEGER NOT NULL DEFAULT 1,
            flags INTEGER NOT NULL DEFAULT 0,
            extra TEXT
        )
        """
    )
    for col in ("ts", "src_ip", "user", "host", "action"):
        db.execute(f"CREATE INDEX idx_events_{col} ON events ({col})")
    # Most messages are the tail of the raw line: store them once, as an offset.
    db.execute(
        "CREATE VIEW events_text AS"
        " SELECT id, coalesce(e.message, substr(e.raw, e.msg_off + 1)) AS message FROM events e"
    )
    # External-content FTS5 over the message: the text lives once, in `events`.
    # Rows are indexed by explicit batched inserts in the writer, never triggers.
    db.execute(
        "CREATE VIRTUAL TABLE events_fts USING fts5("
        "message, content='events_text', content_rowid='id', columnsize=0)"
    )
    db.execute(
        """
        CREATE TABLE checkpoints (
            key TEXT PRIMARY KEY,
            source INTEGER REFERENCES sources(id),
            dev INTEGER, ino INTEGER,
            fp_hash TEXT, fp_len INTEGER,
            offset INTEGER NOT NULL,
            cursor TEXT,
            updated_at INTEGER NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX idx_checkpoints_dev_ino ON checkpoints (dev, ino)")
    db.execute(
        """
        CREATE TABLE source_stats (
            source INTEGER PRIMARY KEY REFERENCES sources(id),
            lines INTEGER NOT NULL DEFAULT 0,
            events INTEGER NOT NULL DEFAULT 0,
            unparsed INTEGER NOT NULL DEFAULT 0,
            truncated INTEGER NOT NULL DEFAULT 0,
            gaps INTEGER NOT NULL DEFAULT 0,
            bytes INTEGER NOT NULL DEFAULT 0,
            last_event_ts INTEGER,
            updated_at INTEGER
        )
        """
    )
    db.execute(
        """
        CREATE TABLE gaps (
            id INTEGER PRIMARY KEY,
            source INTEGER REFERENCES sources(id),
            at INTEGER NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT
        )
        """
    )


def _v2(conn: sqlite3.Connection) -> None:
    """Coded columns, raw lines in compressed blocks, FTS over the new view.

    Converts the rows of a v1 database in place (this runs in one transaction)."""
    from soc_tui.store.events import ROW_COLUMNS, insert_rows

    conn.execute("DROP TABLE events_fts")
    conn.execute("DROP VIEW events_text")
    for col in ("ts", "src_ip", "user", "host", "action"):
        conn.execute(f"DROP INDEX idx_events_{col}")
    conn.execute("ALTER TABLE events RENAME TO events_v1")
    conn.execute("CREATE TABLE terms (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE)")
    conn.execute(
        """
        CREATE TABLE raw_blocks (
            id INTEGER PRIMARY KEY,  -- the first event id it covers
            n INTEGER NOT NULL,  -- events covered: id .. id + n - 1
            ingested_at INTEGER NOT NULL,  -- when the newest of them was stored
            data BLOB NOT NULL  -- see soc_tui/store/blocks.py
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ts INTEGER NOT NULL,
            source INTEGER,  -- sources.id; no FOREIGN KEY: it costs ~5% of ingest
            -- host, app, level, action, outcome, user, target_user, http_method
            -- and user_agent are terms.id (CODED_COLUMNS)
            host INTEGER, app INTEGER, pid INTEGER, level INTEGER,
            action INTEGER, outcome INTEGER, user INTEGER, target_user INTEGER,
            src_ip TEXT, src_port INTEGER,
            http_method INTEGER, url TEXT, http_status INTEGER, bytes INTEGER,
            user_agent INTEGER, referrer TEXT,
            message TEXT,  -- NULL: the raw line's tail (its offset is in the raw block)
            repeat INTEGER NOT NULL DEFAULT 1,
            flags INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute(f"CREATE VIEW events_text AS SELECT id, {MESSAGE_SQL} AS message FROM events e")
    # External-content FTS5 over the message: the text lives once, in `events`
    # and `raw_blocks`. The writer inserts its rows explicitly, never triggers.
    conn.execute(
        "CREATE VIRTUAL TABLE events_fts USING fts5("
        "message, content='events_text', content_rowid='id', columnsize=0)"
    )
    code = Terms(conn).codes.__getitem__
    cur = conn.execute(
        f"SELECT id, source, ingested_at, {', '.join(ROW_COLUMNS)} FROM events_v1 ORDER BY id"
    )
    while rows := cur.fetchmany(10000):
        # insert_rows takes runs of contiguous ids from one source.
        start = 0
        for i in range(1, len(rows) + 1):
            if i < len(rows) and rows[i][0] == rows[i - 1][0] + 1 and rows[i][1] == rows[start][1]:
                continue
            run = rows[start:i]
            insert_rows(conn, code, run[0][1], run[0][0], [r[3:] for r in run],
                        [r[2] for r in run])
            start = i
    conn.execute("DROP TABLE events_v1")
    # Partial where a column is often NULL: every filter on it (=, IN, ranges)
    # implies IS NOT NULL, so the planner still uses them, and the rows
    # without a value (cron lines have no address, web lines no host) cost
    # no index entry.
    conn.execute("CREATE INDEX idx_events_ts ON events (ts)")
    for col in ("src_ip", "user", "host", "action"):
        conn.execute(f"CREATE INDEX idx_events_{col} ON events ({col}) WHERE {col} IS NOT NULL")


def _v3(conn: sqlite3.Connection) -> None:
    """Detection: alerts, their evidence, the rule worker's cursor, first-seen values."""
    from soc_tui.store.alerts import create_alert_tables

    create_alert_tables(conn)


def _v4(conn: sqlite3.Connection) -> None:
    """Triage (alert workflow columns, incidents, notes, audit, analyst
    suppressions) and the hash chain over them and the events."""
    from soc_tui.store.chain import create_chain_tables
    from soc_tui.store.triage import create_triage_tables

    create_triage_tables(conn)
    create_chain_tables(conn)


def _v5(conn: sqlite3.Connection) -> None:
    """The alert queue's order as an index."""
    from soc_tui.store.alerts import create_queue_index

    create_queue_index(conn)


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4, _v5]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the schema to SCHEMA_VERSION, one migration per transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and _has_any_table(conn):
            raise StoreError("the file is an SQLite database but not a soc-tui database")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"schema version {version} is newer than this soc-tui ({SCHEMA_VERSION})"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    converted = False
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                conn.execute("COMMIT")
                break
            converted = converted or version > 0
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    if converted:  # existing rows were rewritten: give the pages they left back
        release_free_pages(conn)


def release_free_pages(conn: sqlite3.Connection) -> None:
    """Shrink the file by its free pages (the database is in auto_vacuum=INCREMENTAL).

    Through executescript: the pragma frees one page per step, and execute()
    steps a statement that returns no columns only once."""
    conn.executescript("PRAGMA incremental_vacuum;")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return sqlite_utils.Database(conn)[name].exists()


def _has_any_table(conn: sqlite3.Connection) -> bool:
    return bool(sqlite_utils.Database(conn).table_names())
