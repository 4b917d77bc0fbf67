"""The scale-out path for real: a PostgreSQL server from the Debian package (started here in a temporary
directory) with the README's user `dse`, its password and database `microtl`, reached with the README's URL form
`postgresql://dse:PW@host/microtl` (psycopg 3: what SQLAlchemy 2.1 maps that URL to), a coordinator with one worker
and a second `dse worker` started separately, as on another machine. No trial may be lost or duplicated, and the
password is nowhere on disk or in any output. CI installs PostgreSQL (.ci/setup.sh): when it cannot start, this
fails."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from dse.cli import main
from conftest import model_cache_at

REPO = Path(__file__).resolve().parents[1]
OPTUNA_CLI = "import sys; from optuna.cli import main; sys.exit(main())"  # the `optuna` command
TINY = (REPO / "studies" / "tiny.toml").read_text()
PASSWORD = "Pw-7f3c9e2a"  # the README's PASSWORD; no file and no output may contain it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        pytest.fail("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install the Debian "
                    "package postgresql (.ci/setup.sh does)")
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def postgres():
    """A throw-away PostgreSQL server on a free localhost port (trust authentication, socket in its own folder).
    PostgreSQL refuses to run as root: then the cluster belongs to the `postgres` user (or `nobody`)."""
    bin_dir = _server_binaries()
    root = Path(tempfile.mkdtemp(prefix="microtl-pg-"))  # not under pytest's root-only tmp: the server user reads it
    data = root / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _has_user(u)), None)
        if user is None:
            pytest.fail("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")
        shutil.chown(root, user)
        prefix = ["runuser", "-u", user, "--"]
    port = _free_port()
    log = root / "server.log"
    try:
        # TCP connections need the password (as from another machine); the socket is for setting up
        subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                       text=True, timeout=120)
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                        "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, text=True, timeout=120)
        # the README's `createuser --pwprompt dse && createdb -O dse microtl`, without the prompt
        psql = [*prefix, str(bin_dir / "psql"), "-h", str(root), "-p", str(port), "-U", "postgres", "-v",
                "ON_ERROR_STOP=1", "-c"]
        subprocess.run([*psql, f"CREATE ROLE dse LOGIN PASSWORD '{PASSWORD}'"], check=True, capture_output=True,
                       text=True, timeout=60)
        subprocess.run([*psql, "CREATE DATABASE microtl OWNER dse"], check=True, capture_output=True, text=True,
                       timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        server_log = log.read_text(errors="replace")[-800:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bin_dir}: {exc}\n{detail}\n{server_log}")
    try:
        yield f"postgresql://dse:{PASSWORD}@127.0.0.1:{port}/microtl"
    finally:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "microtl-cache-workers"  # shared by both worker test modules
    cache.mkdir(exist_ok=True)
    with model_cache_at(cache):
        yield cache


def _waiting(url: str, name: str) -> int:
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        return 0
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _no_password_anywhere(root: Path, *outputs: str) -> None:
    for text in outputs:
        assert PASSWORD not in text
    files = [f for f in root.rglob("*") if f.is_file()]
    assert files
    for f in files:
        assert PASSWORD.encode() not in f.read_bytes(), f


def test_two_workers_on_postgresql_lose_and_duplicate_nothing(postgres, tmp_path, capsys, monkeypatch):
    import optuna
    from optuna.trial import TrialState

    (tmp_path / "tiny.toml").write_text(TINY)
    out, target = tmp_path / "out", 24
    # the pretrained network is cached first, so that both workers start alike
    assert main(["run", str(tmp_path / "tiny.toml"), "--storage", postgres, "--out", str(out), "--trials", "2",
                 "--quiet"]) == 0
    env = os.environ.copy()
    # the README's commands: `dse run STUDY --storage postgresql://dse:PASSWORD@dbhost/microtl --workers 2`, then
    # `dse worker STUDY --storage ...` as on another machine
    coordinator = subprocess.Popen([sys.executable, "-m", "dse", "run", str(tmp_path / "tiny.toml"), "--storage",
                                    postgres, "--out", str(out), "--trials", str(target), "--workers", "2", "--quiet"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    joiner = None
    try:
        deadline = time.monotonic() + 120
        while not _waiting(postgres, "tiny"):
            assert coordinator.poll() is None, coordinator.communicate()
            assert time.monotonic() < deadline, "the coordinator queued no trials"
            time.sleep(0.1)
        joiner = subprocess.Popen([sys.executable, "-m", "dse", "worker", str(tmp_path / "tiny.toml"), "--storage",
                                   postgres], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        _, joiner_err = joiner.communicate(timeout=240)
        _, coordinator_err = coordinator.communicate(timeout=240)
    finally:
        for proc in (coordinator, joiner):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert joiner.returncode == 0, joiner_err
    assert coordinator.returncode == 0, coordinator_err
    assert "Traceback" not in joiner_err + coordinator_err

    trials = optuna.load_study(study_name="tiny", storage=postgres).get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(target))
    assert all(t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and t.user_attrs.get("fail_reason"))
               for t in trials), Counter(t.state.name for t in trials)
    by_worker = Counter(t.user_attrs.get("worker") for t in trials[2:])
    assert None not in by_worker and len(by_worker) >= 2, by_worker  # several workers took part
    assert len({tuple(sorted(t.params.items())) for t in trials}) > target // 2  # workers sample differently
    assert (out / "trials.csv").is_file() and (out / "study.json").is_file() and not (out / "study.db").exists()

    # the study is complete: a worker joining now has nothing to do; `dse show` reads the folder's PostgreSQL study
    assert main(["worker", str(tmp_path / "tiny.toml"), "--storage", postgres, "--quiet"]) == 0
    capsys.readouterr()
    # the folder keeps the URL with its password masked: without it, one line naming the masked URL, exit 2
    monkeypatch.delenv("MICROTL_STORAGE_URL", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))
    assert main(["show", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "dse:***@" in err, err
    # the password from the environment: the full URL, or PostgreSQL's own PGPASSWORD
    monkeypatch.setenv("MICROTL_STORAGE_URL", postgres)
    assert main(["show", str(out)]) == 0
    monkeypatch.delenv("MICROTL_STORAGE_URL")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert main(["report", str(out)]) == 0
    shown = capsys.readouterr()
    assert len(optuna.load_study(study_name="tiny", storage=postgres).trials) == target
    assert "postgresql://dse:***@127.0.0.1" in (out / "study.json").read_text()
    _no_password_anywhere(tmp_path, joiner_err, coordinator_err, shown.out, shown.err)

    # the optuna CLI reads the study (the README's URL works there too): names, and a table of sane width
    listing = subprocess.run([sys.executable, "-c", OPTUNA_CLI, "studies", "--storage", postgres], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "tiny" in listing.stdout and max(len(line) for line in listing.stdout.splitlines()) < 1000
    study = optuna.load_study(study_name="tiny", storage=postgres)
    assert study.metric_names == ["accuracy", "energy", "ram"]
