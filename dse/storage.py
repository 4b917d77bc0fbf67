"""Opening a study's Optuna storage, one way for every dse command.

SQLite (the default: study.db in the study folder) is opened in WAL journal mode with a 60 s busy timeout, so that
readers (`dse show`, `dse report`, a progress poll, another worker) never block the running study's writes: in
SQLite's default rollback-journal mode a reader's shared lock made a writing `dse run` fail with "database is
locked". Workers that claim queued trials also need every transaction to take the write lock at its start
(BEGIN IMMEDIATE): SQLite has no row locks, and Python's driver starts a transaction only at the first write.
"""
from __future__ import annotations

SQLITE_TIMEOUT_S = 60


def open_storage(url: str, *, claim: bool = False):
    """The storage for `url`; for SQLite, WAL mode and a busy timeout (and BEGIN IMMEDIATE when `claim`)."""
    import optuna

    if not url.startswith("sqlite:"):
        return optuna.storages.get_storage(url)  # PostgreSQL / MySQL lock rows (SELECT ... FOR UPDATE)
    from sqlalchemy import event

    rdb = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}})
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
