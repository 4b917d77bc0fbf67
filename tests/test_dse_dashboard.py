"""What a user of Optuna's own tools sees of a study: optuna-dashboard (the `test` extra), started on loopback and
read through its JSON API, shows the objectives by name, each trial's constraint values, and - computed as its Pareto
front plot does, from feasible complete trials - the same Pareto set as `dse show`; the optuna CLI's `studies`
table stays narrow (the study file is not a user attribute any more)."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from dse.cli import main
from dse.study.folder import StudyFolder
from conftest import model_cache_at

REPO = Path(__file__).resolve().parents[1]
# `optuna-dashboard URL --host 127.0.0.1 --port P`, through its public API (no console script needed on PATH)
DASHBOARD = ("import sys, optuna_dashboard; "
             "optuna_dashboard.run_server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))")
OPTUNA_CLI = "import sys; from optuna.cli import main; sys.exit(main())"  # the `optuna` command
# the tiny study, a tighter RAM limit and more trials: some trials are infeasible, and must stay off the front
STUDY = (REPO / "studies" / "tiny.toml").read_text().replace("ram_kb = 64", "ram_kb = 24").replace(
    "trials = 6", "trials = 16")


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("microtl-cache")
    with model_cache_at(cache):
        yield cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _dominates(a: list[float], b: list[float], directions: list[str]) -> bool:
    better = [x >= y if d == "maximize" else x <= y for x, y, d in zip(a, b, directions)]
    strictly = [x > y if d == "maximize" else x < y for x, y, d in zip(a, b, directions)]
    return all(better) and any(strictly)


def feasible_pareto(detail: dict) -> set[int]:
    """The dashboard's Pareto front plot: complete trials whose constraints are all <= 0, non-dominated."""
    directions = detail["directions"]
    feasible = [t for t in detail["trials"] if t["state"] == "Complete" and t["constraints"]
                and all(c <= 0 for c in t["constraints"])]
    return {t["number"] for t in feasible
            if not any(_dominates(o["values"], t["values"], directions) for o in feasible)}


def test_dashboard_reads_names_constraints_and_the_same_pareto_set(tmp_path, capsys):
    study_file, out = tmp_path / "tight.toml", tmp_path / "out"
    study_file.write_text(STUDY)
    assert main(["run", str(study_file), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    count = int(re.search(r"(\d+) feasible Pareto picks", shown).group(1))
    table_rows = [line.split() for line in shown.splitlines()[1:] if re.match(r"^\s*\d+\s+\d+\s", line)]
    show_trials = {int(row[1]) for row in table_rows}
    assert len(show_trials) == count > 0, shown

    port = _free_port()
    url = f"sqlite:///{out / 'study.db'}"
    server = subprocess.Popen([sys.executable, "-c", DASHBOARD, url, str(port)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline, studies = time.monotonic() + 60, None
        while studies is None:
            assert server.poll() is None, server.communicate()
            assert time.monotonic() < deadline, "optuna-dashboard did not answer on loopback"
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.3)
        (summary,) = studies
        assert summary["study_name"] == "tiny"
        assert all(len(a["value"]) < 200 for a in summary["user_attrs"])  # no study file among the attributes
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}")
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert detail["objective_names"] == ["accuracy", "energy", "ram"]
    complete = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert complete and all(len(t["constraints"]) == 3 for t in complete)  # board_ram, board_flash, ram_kb
    infeasible = [t for t in complete if any(c > 0 for c in t["constraints"])]
    assert infeasible, "the tight RAM limit must make some trials infeasible"

    # the dashboard's constraint values are Optuna's, trial by trial and key by key
    study, spec = StudyFolder(out).load()
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    keys = [c.key for c in spec.constraints]
    for t in complete:
        assert t["constraints"] == [by_number[t["number"]].constraints[k] for k in keys]
    assert study.metric_names == ["accuracy", "energy", "ram"]

    front = feasible_pareto(detail)
    assert front == {t.number for t in study.best_trials}  # Optuna's feasible Pareto set
    # `dse show` lists a configuration proposed twice once (the first trial): the same set, deduplicated
    params = {t["number"]: tuple(sorted((p["name"], p["param_external_value"]) for p in t["params"]))
              for t in detail["trials"]}
    first = {}
    for n in sorted(front):
        first.setdefault(params[n], n)
    assert set(first.values()) == show_trials
    assert len(first) == count

    listing = subprocess.run([sys.executable, "-c", OPTUNA_CLI, "studies", "--storage", url], capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    width = max(len(line) for line in listing.stdout.splitlines())
    assert "tiny" in listing.stdout and width < 400, width
    assert optuna.load_study(study_name="tiny", storage=url).metric_names == ["accuracy", "energy", "ram"]
