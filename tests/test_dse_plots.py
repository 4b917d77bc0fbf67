"""The plots of a study folder: every expected PNG after `dse report`, the hypervolume history against our exact
sweeps, accuracy bands inside [0, 100], the predicted-vs-measured plot only with validation records, and the rescore
figure on the study plots' axes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dse.cli import main
from dse.study.folder import StudyFolder
from dse.reports.hypervolume import exact_hypervolume
from dse.reports.plots import accuracy_plot
from dse.reports.report import trial_table
from dse.reports.search_plots import REFERENCE, hypervolume_history

REPO = Path(__file__).resolve().parents[1]
PLOTS = ["pareto_accuracy_energy.png", "pareto_accuracy_ram.png", "pareto_energy_ram.png", "accuracy_vs_samples.png",
         "ram_breakdown.png", "flash_breakdown.png", "phases.png", "hypervolume.png", "parallel_coordinates.png",
         "param_importance.png"]


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plots")
    (root / "tiny.toml").write_text((REPO / "studies" / "tiny.toml").read_text())
    assert main(["run", str(root / "tiny.toml"), "--out", str(root / "s"), "--trials", "8", "--quiet"]) == 0
    return root / "s"


def test_every_plot_after_run_and_report(study, capsys):
    for name in PLOTS:
        assert (study / name).read_bytes()[:4] == b"\x89PNG", name
    assert not (study / "predicted_vs_measured.png").exists()  # no validation records in the folder
    for name in PLOTS:
        (study / name).unlink()
    capsys.readouterr()
    assert main(["report", str(study), "--json"]) == 0
    written = {Path(p).name for p in json.loads(capsys.readouterr().out)["written"]}
    assert set(PLOTS) <= written
    summary = (study / "summary.md").read_text()
    assert all(f"({name})" in summary for name in PLOTS)


def test_hypervolume_history_is_the_exact_volume_of_each_prefix(study):
    loaded, spec = StudyFolder(study).load()
    table = trial_table(loaded, spec)
    numbers, volumes = hypervolume_history(table, spec)
    assert numbers == sorted(table.loc[table["state"] == "COMPLETE", "number"])
    assert all(b >= a for a, b in zip(volumes, volumes[1:]))  # a front only grows
    done = table[table["state"] == "COMPLETE"].sort_values("number")
    v = np.column_stack([-done["accuracy_mean"], done["predicted.energy_mj"], done["predicted.ram_total"]])
    norm = (v - v.min(axis=0)) / np.where(np.ptp(v, axis=0) > 0, np.ptp(v, axis=0), 1)
    feasible = norm[(done["feasible"] == True).to_numpy()]  # noqa: E712
    assert volumes[-1] == pytest.approx(exact_hypervolume(feasible, [REFERENCE] * 3), rel=1e-12)
    assert 0 < volumes[-1] <= REFERENCE ** 3


def test_accuracy_band_stays_within_0_and_100(study):
    loaded, spec = StudyFolder(study).load()
    table = trial_table(loaded, spec)
    table.loc[:, "accuracy_mean"] = 0.97  # a mean near 100% with a wide spread: the band must be clipped
    table.loc[:, "accuracy_std"] = 0.2
    table.loc[table.index[0], "accuracy_mean"] = 0.05  # and one near 0%
    fig = accuracy_plot(table, spec)
    ys = np.concatenate([seg[:, 1] for coll in fig.axes[0].collections for seg in coll.get_segments()])
    assert ys.min() >= 0 and ys.max() <= 100


def test_rescore_plot_has_the_study_plots_axes(study, tmp_path, capsys):
    folder = tmp_path / "r"
    shutil.copytree(study, folder)
    assert main(["rescore", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert Path(result["plot"]).read_bytes()[:4] == b"\x89PNG"
    from dse.reports.rescore_plot import rescore_figure

    _, spec = StudyFolder(folder).load()
    fig = rescore_figure(spec, result, ["energy", "ram"], spec.constraints)
    assert [ax.get_xlabel() for ax in fig.axes] == ["simulated accuracy (%)"] * 2
    assert [ax.get_ylabel() for ax in fig.axes] == ["predicted energy (mJ)", "predicted peak RAM (KB)"]


def test_show_json_and_a_table_that_fits_100_columns(study, capsys, monkeypatch):
    assert main(["show", str(study), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    loaded, _ = StudyFolder(study).load()
    assert sorted(p["trial"] for p in shown["picks"]) <= sorted(t.number for t in loaded.best_trials)
    assert shown["objectives"] == {"accuracy": "maximize", "energy": "minimize", "ram": "minimize"}
    assert all("energy_mj" in p["predicted"] for p in shown["picks"])
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["show", str(study)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "pred." in out and "energy" in out  # the objectives' columns are kept
