"""`dse rescore` of a study priced on nrf52840dk: re-priced values equal fresh predictions with the snapshot (and
the emulator map refitted for it), the old/new picks and feasibility, the plot and JSON, the one-line errors of a
bad --calibration (nothing written), a study priced with the published-firmware model, and `dse calibrate`
telling when the emulator map went stale."""
from __future__ import annotations

import json
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from conftest import model_cache_at
from cost_models.microtl_dse.emulator_map import build_map, load_emulator_map
from cost_models.microtl_dse.fit import load_firmware_calibration, save_firmware_calibration
from cost_models.predict import predict
from dse.cli import main
from dse.study.folder import StudyFolder
from dse.search.optimize import run_study
from dse.study.file import load_study_file
from vocabulary.configuration import Configuration

LIMIT_KB = 24
STUDY = f"""
[study]
name = "rsmall"
trials = 8
repeats = 2
seed = 3
sampler = "random"

[task]
name = "digits"

[model]
name = "digits_cnn"

[board]
name = "nrf52840dk"

[space]
cut = ["pool2", "fc1", "conv2"]
hidden = [0, 8, 16]
samples = {{ low = 20, high = 200, step = 20 }}
epochs = 5
batch = 8
lr = {{ low = 0.01, high = 0.05 }}

[objectives]
accuracy = "maximize"
energy = "minimize"
ram = "minimize"

[constraints]
ram_kb = {LIMIT_KB}
"""
PAPER = STUDY.replace('name = "rsmall"', 'name = "rpaper"').replace("trials = 8", "trials = 3").replace(
    'name = "nrf52840dk"', 'name = "nrf52840dk"\nfirmware = "paper"')
FIELDS = ("ram_total", "flash_total", "energy_mj", "latency_s", "energy.collection_mj", "energy.training_mj",
          "time.training_s", "instructions.collection", "instructions.training")


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """The two small studies, run once (a few seconds); each test works on its own copy."""
    root = tmp_path_factory.mktemp("rescore")
    with model_cache_at(tmp_path_factory.getbasetemp() / "models-cache"):
        out = {}
        for name, text in (("rsmall", STUDY), ("rpaper", PAPER)):
            (root / f"{name}.toml").write_text(text)
            run_study(load_study_file(root / f"{name}.toml"), root / name, progress=False)
            out[name] = root / name
        yield out


def copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)  # with the SQLite write-ahead log
    return dst


def trials(folder: Path):
    study, _ = StudyFolder(folder).load()
    return study, [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]


def dominated(p, q) -> bool:
    """q dominates p: (accuracy, energy, ram), accuracy maximized."""
    better_eq = q[0] >= p[0] and q[1] <= p[1] and q[2] <= p[2]
    return better_eq and q != p


def changed_snapshot(folder: Path, path: Path):
    """The current calibration with its RAM scaled so that the study's largest-RAM pick no longer fits the study's
    limit, and its collection instructions (and static cycle estimate, when fitted) raised by 20% (a deliberately
    different model)."""
    cal = load_firmware_calibration("qemu-an386")
    study, done = trials(folder)
    platform = load_emulator_map("nrf52840dk").platform.ram_bytes
    biggest = max(t.values[2] for t in study.best_trials)
    k = max(1.05, 1.02 * (LIMIT_KB * 1024 - platform) / (biggest - platform))
    mod = replace(cal, digest="test" + cal.digest[4:], ram={g: v * k for g, v in cal.ram.items()},
                  instructions={**cal.instructions,
                                "collection": {c: 1.2 * v for c, v in cal.instructions["collection"].items()}},
                  cycles_estimate={**cal.cycles_estimate, **({"collection": {
                      c: 1.2 * v for c, v in cal.cycles_estimate["collection"].items()}} if cal.cycles_estimate else {})})
    save_firmware_calibration(mod, path)
    return mod


def test_rescore_with_changed_snapshot(studies, tmp_path, capsys):
    folder = copy(studies["rsmall"], tmp_path)
    snap = tmp_path / "cal.json"
    mod = changed_snapshot(folder, snap)
    assert main(["rescore", str(folder), "--calibration", str(snap)]) == 0
    text = capsys.readouterr().out
    study, done = trials(folder)
    keys = [k for k in study.user_attrs if k.startswith("rescored/nrf52840dk/")]
    assert len(keys) == 1
    stored = study.user_attrs[keys[0]]
    files = list((folder / "rescore").glob("nrf52840dk-*"))
    assert sorted(f.suffix for f in files) == [".json", ".png"]
    assert json.loads((folder / "rescore" / f"nrf52840dk-{keys[0].split('/')[-1]}.json").read_text()) == stored
    assert next(f for f in files if f.suffix == ".png").stat().st_size > 20_000

    # stored values = fresh predictions with the snapshot through the map refitted for it
    board_map = load_emulator_map("nrf52840dk")
    m = build_map("nrf52840dk", platform=board_map.platform, fw_cal=mod)
    assert m.phases["training"].cpi == pytest.approx(stored["emulator_map"]["phases"]["training"]["cpi"])
    fresh = {}
    for t in done:
        config = Configuration.from_dict(t.user_attrs["config"])
        epochs = min(t.user_attrs["accuracy"]["epochs_mean"], config.epochs)
        p = predict(config, "nrf52840dk", epochs_run=epochs, firmware="microtl-dse", firmware_calibration=mod,
                    emulator_map=m).to_dict()
        fresh[t.number] = p
        row = stored["trials"][str(t.number)]["new"]
        for f in FIELDS:
            assert row[f] == pytest.approx(p[f], rel=1e-12), (t.number, f)
        assert row["phases_included"] == "collection,training"
        assert stored["trials"][str(t.number)]["old"]["ram_total"] == t.user_attrs["predicted"]["ram_total"]

    # the picks, independently: feasible (the study's limit and the board's memories), non-dominated
    def picks(values, feasible):
        pts = {n: v for n, v in values.items() if feasible[n]}
        return {n for n, p in pts.items() if not any(dominated(p, q) for q in pts.values())}

    acc = {t.number: t.user_attrs["accuracy"]["mean"] for t in done}
    new_vals = {n: (acc[n], p["energy_mj"], p["ram_total"]) for n, p in fresh.items()}
    new_ok = {n: p["ram_total"] <= LIMIT_KB * 1024 and p["flash_total"] <= 1024 * 1024 for n, p in fresh.items()}
    old = {t.number for t in study.best_trials}
    new = picks(new_vals, new_ok)
    assert stored["old_picks"] == sorted(old) and stored["new_picks"] == sorted(new)
    assert stored["left"] == sorted(old - new) and stored["joined"] == sorted(new - old)
    assert stored["left_infeasible"] == sorted(n for n in old - new if not new_ok[n])
    assert stored["left_infeasible"], "the snapshot was made to push the largest-RAM pick over the limit"
    assert f"left {stored['left']}" in text and f"(infeasible now: {stored['left_infeasible']})" in text
    assert f"joined {stored['joined'] or 'none'}" in text
    ram_change = statistics.median(fresh[t.number]["ram_total"] / t.user_attrs["predicted"]["ram_total"] - 1
                                   for t in done)
    assert stored["changes"]["ram"]["median"] == pytest.approx(ram_change)
    assert f"predicted ram, new / old - 1: median {ram_change:+.1%}" in text
    assert "all cost figures are predicted" in text and "refitted in memory" in text
    assert "published-firmware" not in text  # this study priced our firmware already
    assert stored["labels"]["sources"]["cpi.training"].startswith("fitted")
    # collection: the snapshot's static cycle estimate when its records carry one, else the training CPI
    assert stored["labels"]["sources"]["cpi.collection"].startswith("estimated" if mod.cycles_estimate else "assumed")


@pytest.mark.parametrize("content, why", [
    ("{not json", "not a firmware calibration snapshot"),
    ("[1, 2]", "not a firmware calibration snapshot"),
    ('{"format": "something else", "version": 2}', "not a firmware calibration"),
    (None, "cannot price"),  # right format, a coefficient that is not a number
])
def test_bad_calibration_one_line_nothing_written(studies, tmp_path, capsys, content, why):
    folder = copy(studies["rsmall"], tmp_path)
    snap = tmp_path / "bad.json"
    if content is None:
        data = load_firmware_calibration("qemu-an386").to_dict()
        data["instructions"]["training"] = {k: "x" for k in data["instructions"]["training"]}
        content = json.dumps(data)
    snap.write_text(content)
    before = dict(trials(folder)[0].user_attrs)
    assert main(["rescore", str(folder), "--calibration", str(snap)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and why in err and str(snap) in err
    assert not (folder / "rescore").exists()
    assert dict(trials(folder)[0].user_attrs) == before


def test_paper_priced_study_says_the_model_changed(studies, tmp_path, capsys):
    folder = copy(studies["rpaper"], tmp_path)
    assert main(["rescore", str(folder)]) == 0
    text = capsys.readouterr().out
    study, done = trials(folder)
    assert all(t.user_attrs["predicted"]["firmware"] == "paper" for t in done)
    assert f"note: {len(done)} trial(s) were priced with the published-firmware model" in text
    assert "phases in energy/latency: old training; new collection,training" in text
    stored = next(v for k, v in study.user_attrs.items() if k.startswith("rescored/"))
    assert stored["old_firmware"] == {"paper": len(done)}
    assert all(r["new"]["firmware"] == "microtl-dse" for r in stored["trials"].values())


def test_rescore_on_the_emulated_board_keeps_energy(studies, tmp_path, capsys):
    folder = copy(studies["rsmall"], tmp_path)
    assert main(["rescore", str(folder), "--board", "qemu-an386"]) == 0
    text = capsys.readouterr().out
    assert "energy: not re-priced (qemu-an386 has no clock" in text
    study, done = trials(folder)
    stored = next(v for k, v in study.user_attrs.items() if k.startswith("rescored/qemu-an386/"))
    for t in done:
        config = Configuration.from_dict(t.user_attrs["config"])
        p = predict(config, "qemu-an386", epochs_run=min(t.user_attrs["accuracy"]["epochs_mean"], config.epochs))
        row = stored["trials"][str(t.number)]["new"]
        assert row["ram_total"] == p.ram_total
        assert row["energy_mj"] == t.user_attrs["predicted"]["energy_mj"]  # kept, said so


def test_calibrate_says_when_the_map_went_stale(monkeypatch, tmp_path):
    import cost_models.microtl_dse.emulator_map as em
    from dse.commands.calibrate import stale_maps

    real = em.current_inputs

    def changed(board, emulator="qemu-an386", fw_cal=None):
        return {k: ("0" * 64 if "firmware calibration" in k else v) for k, v in real(board, emulator, fw_cal).items()}

    monkeypatch.setattr(em, "current_inputs", changed)
    lines = stale_maps("qemu-an386", tmp_path)
    em.clear_map_cache()
    assert len(lines) == 1
    assert "nrf52840dk emulator map" in lines[0] and "is stale" in lines[0]
    assert "dse calibrate --board nrf52840dk --refit" in lines[0] and "changed since the map was fitted" in lines[0]
    assert f"not {tmp_path}" in lines[0]
