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

import os
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

SQLITE_TIMEOUT_S = 60
HEARTBEAT_ENV = "MICROTL_HEARTBEAT_S"  # override of the heartbeat interval (tests use 1 s)
HEARTBEAT_S = 10
GRACE_INTERVALS = 3  # a trial is stale after 3 missed heartbeats
MAX_RETRY = 2  # a configuration whose workers died twice is left FAIL
ATTRS_NOT_RETRIED = ("fail_reason", "worker")  # the dead run's, not the retry's


class Retry(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry, without the dead run's failure reason and worker copied onto the retry."""

    def __call__(self, study, trial) -> None:
        import copy

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


def open_storage(url: str, *, claim: bool = False):
    """The storage for `url`; for SQLite, WAL mode and a busy timeout (and BEGIN IMMEDIATE when `claim`); for every
    RDB storage, heartbeats of running trials and a retry of the ones whose worker died."""
    with warnings.catch_warnings():  # heartbeats and their retry are "experimental" since Optuna 2.8
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _open(url, claim)


def _open(url: str, claim: bool):
    if not url.startswith(("sqlite:", "postgresql", "mysql", "oracle", "mssql")):
        return optuna.storages.get_storage(url)
    interval = heartbeat_interval()
    beats = {"heartbeat_interval": interval, "grace_period": GRACE_INTERVALS * interval,
             "heartbeat_stale_trial_callback": Retry(max_retry=MAX_RETRY)}
    if not url.startswith("sqlite:"):
        return optuna.storages.get_storage(RDBStorage(url, **beats))  # PostgreSQL / MySQL lock rows (FOR UPDATE)
    from sqlalchemy import event

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
