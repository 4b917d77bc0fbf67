"""Opening a study's Optuna storage, one way for every dse command.

SQLite (the default: study.db in the study folder) is opened in WAL journal mode with a 60 s busy timeout, so that
readers (`dse show`, `dse report`, a progress poll, another worker) never block the running study's writes: in
SQLite's default rollback-journal mode a reader's shared lock made a writing `dse run` fail with "database is
locked". Workers that claim queued trials also need every transaction to take the write lock at its start
(BEGIN IMMEDIATE): SQLite has no row locks, and Python's driver starts a transaction only at the first write.

Every RDB storage records heartbeats of running trials (Optuna's `heartbeat_interval`, `grace_period`): a trial
whose worker died (killed, its machine gone) stops beating, and the next worker or coordinator that looks
(`fail_stale_trials`) closes it as FAIL and queues its configuration again (RetryHeartbeatStaleTrialCallback, the
Optuna 5 name of RetryFailedTrialCallback), so nothing stays RUNNING until someone reruns `dse run`.
"""
from __future__ import annotations

import copy
import os
import sqlite3
import warnings
from pathlib import Path

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from dse.errors import UserError
from dse.paths import check_output_folder, shown

SQLITE_TIMEOUT_S = 60
HEARTBEAT_ENV = "MICROTL_HEARTBEAT_S"  # override of the heartbeat interval (tests use 1 s)
HEARTBEAT_S = 10
GRACE_INTERVALS = 3  # a trial is stale after 3 missed heartbeats
MAX_RETRY = 2  # a configuration whose workers died twice is left FAIL
ATTRS_NOT_RETRIED = ("fail_reason", "worker")  # the dead run's, not the retry's


class Retry(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry, without the dead run's failure reason and worker copied onto the retry."""

    def __call__(self, study, trial) -> None:
        clean = copy.deepcopy(trial)
        clean.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in ATTRS_NOT_RETRIED}
        super().__call__(study, clean)


def fail_stale(study) -> None:
    """Optuna's `fail_stale_trials` (FAIL, then the retry callback) without its "experimental" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def heartbeat_interval() -> int:
    text = os.environ.get(HEARTBEAT_ENV, "")
    try:
        value = int(text) if text else HEARTBEAT_S
    except ValueError:
        value = HEARTBEAT_S
    return max(1, value)


class StorageError(UserError):
    """A storage URL that cannot be opened: malformed, unknown database, unreachable, wrong password, not a
    database file. The message names the URL with its password masked."""


def masked(url: str) -> str:
    """The URL as shown to the user: password replaced by ***."""

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return repr(url) if len(url) <= 80 else repr(url[:80]) + "..."


def check_url(url: str, *, existing: bool = False) -> None:
    """Before anything is written: the URL parses, names a database SQLAlchemy knows, and for SQLite the file is
    absent (a new study; not when `existing`) or a non-empty SQLite database (a 0-byte file would silently get a
    fresh schema written into it)."""

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except NoSuchModuleError:
        raise StorageError(f"storage {masked(url)}: unknown database {url.split(':', 1)[0]!r} (use sqlite:///FILE "
                           "or postgresql://USER:PASSWORD@HOST/DB)") from None
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"storage {masked(url)}: not a storage URL ({_first_line(exc)}); e.g. "
                           "sqlite:///path/study.db") from None
    if parsed.get_backend_name() != "sqlite":
        return
    if not parsed.database or parsed.database == ":memory:":
        raise StorageError(f"storage {masked(url)}: name a database file (an in-memory one cannot be resumed)")
    file = Path(parsed.database)
    try:
        exists = file.exists()
    except OSError as exc:
        raise StorageError(f"storage {masked(url)}: {exc.strerror or exc}") from None
    if not exists:
        if existing:
            raise StorageError(f"storage {masked(url)}: no such database file")
        check_output_folder(file.parent, f"storage {masked(url)}: folder")
        return
    if not file.is_file():
        raise StorageError(f"storage {masked(url)}: {shown(file)} is not a file")
    # never open() the database file ourselves: closing any descriptor of it drops every POSIX lock this process
    # holds on it, the locks of a storage already open here included (SQLite's "how to corrupt" 2.2; seen: a
    # coordinator's storage read a stale snapshot, then "database disk image is malformed"). Size by stat, the
    # header and tables through SQLite itself, which shares its locks within the process.
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise StorageError(f"storage {masked(url)}: cannot read {file} ({exc.strerror})") from None
    if not size:
        raise StorageError(f"storage {masked(url)}: {file} is empty (0 bytes), not a study database")
    problem = _optuna_tables_problem(file)
    if problem == NOT_SQLITE:
        raise StorageError(f"storage {masked(url)}: {file} is not an SQLite database")
    if problem and (existing or problem != NO_TABLES):  # a reader: Optuna would write its schema into it
        raise StorageError(f"storage {masked(url)}: {file} {problem}")


NOT_SQLITE, NO_TABLES = "is not an SQLite database", "holds no Optuna study tables"


def _optuna_tables_problem(file: Path) -> str | None:
    """Why the SQLite file holds no Optuna storage (read-only look: nothing is written), or None."""

    try:
        db = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return NOT_SQLITE if "not a database" in str(exc) else f"cannot be read ({exc})"
    return None if "studies" in names else NO_TABLES


def _first_line(exc: BaseException) -> str:
    """The driver's own message (psycopg, sqlite3) without SQLAlchemy's SQL echo and help link."""
    inner = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(inner).splitlines() if ln.strip()]
    return lines[0] if lines else type(inner).__name__


def open_storage(url: str, *, claim: bool = False, existing: bool = False):
    """The storage for `url`; for SQLite, WAL mode and a busy timeout (and BEGIN IMMEDIATE when `claim`); for every
    RDB storage, heartbeats of running trials and a retry of the ones whose worker died. Every failure to open it
    is a StorageError naming the URL (password masked); `existing`: the database must already be there (readers:
    show, report, validate, rescore)."""

    check_url(url, existing=existing)
    try:
        with warnings.catch_warnings():  # heartbeats and their retry are "experimental" since Optuna 2.8
            warnings.simplefilter("ignore", ExperimentalWarning)
            return _open(url, claim)
    except (SQLAlchemyError, ImportError) as exc:
        raise StorageError(f"storage {masked(url)}: {_first_line(exc)}") from None


def _open(url: str, claim: bool):
    if not url.startswith(("sqlite:", "postgresql", "mysql", "oracle", "mssql")):
        return optuna.storages.get_storage(url)
    interval = heartbeat_interval()
    beats = {"heartbeat_interval": interval, "grace_period": GRACE_INTERVALS * interval,
             "heartbeat_stale_trial_callback": Retry(max_retry=MAX_RETRY)}
    if not url.startswith("sqlite:"):
        return optuna.storages.get_storage(RDBStorage(url, **beats))  # PostgreSQL / MySQL lock rows (FOR UPDATE)

    rdb = RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}}, **beats)
    engine = rdb.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):  # noqa: ARG001 - SQLAlchemy's signature
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # persistent in the file; readers and the writer stop blocking
        cursor.close()
        if claim:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

    if claim:
        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made before the listeners existed are not reused
    return optuna.storages.get_storage(rdb)
