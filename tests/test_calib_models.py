"""Firmware cost models (cost_models.microtl_dse.runs / microtl_dse.model / microtl_dse.fit / microtl_dse.fit_error): records are checked,
the fit recovers known coefficients, the shipped qemu-an386 records predict their own measurements."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cost_models.microtl_dse import model as fm
from cost_models.microtl_dse.fit_error import cross_validate, summarize
from cost_models.microtl_dse.fit import deployed_view, fit_firmware, load_firmware_calibration, predict_run
from cost_models.predict import predict
from cost_models.microtl_dse.runs import RunRecordError, load_runs
from firmware.run_records import append_rows, make_rows, measured_keys
from cost_models.workload import workload_from_config
from vocabulary.configuration import Configuration

SHIPPED = Path(__file__).resolve().parents[1] / "cost_models" / "calibration" / "qemu-an386"
PROV = {"source": "synthetic-test", "sources_sha256": "a" * 64, "elf_sha256": "b" * 64, "toolchain": "gcc",
        "emulator": "none", "date": "2025-01-01"}


RUNTIME = ("runtime", "stored_runtime", "stream_runtime")


def _synthetic(path: Path, coef: dict[str, dict[str, float]], legacy: bool = False) -> None:
    """Rows whose instructions are exactly `coef` x counts and whose deployed image's memory is the allocated bytes
    + 500/20000, with a harness share of 300 B RAM and 2500 B flash. `legacy`: rows as measured before the
    deployed image was built apart (the validation ELF only, inputs stored in its flash, no sensor buffer)."""
    for cut in ("conv1", "conv2", "pool2", "fc1"):
        for hidden in (0, 8, 32):
            for batch, n, epochs in ((4, 30, 2), (16, 90, 3), (8, 200, 2)):
                if cut == "conv1" and hidden == 32:
                    continue
                c = Configuration(task="digits", model="digits_cnn", cut=cut, hidden=hidden, samples=n,
                                  epochs=epochs, batch=batch, patience=epochs)
                w = workload_from_config(c, 3)
                measured = {f"instructions.{p}": round(sum(coef[p].get(k, 0) * v for k, v in
                                                           fm.instruction_counts(p, w, epochs, 100).items()))
                            for p in fm.PHASES}
                # the runtime constants are units (1 each) the fit sizes: 500 B in all
                ram = sum(v for k, v in fm.ram_terms(w).items() if k not in RUNTIME) + 500
                flash = sum(fm.flash_terms(w, 100).values()) - 1 + 20000
                if legacy:
                    terms = fm.ram_terms(w)
                    measured["peak_ram"] = ram - terms["sensor_input"] - terms["labels"]
                    measured["flash"] = flash + fm.stored_inputs_bytes(w, 100)
                else:
                    measured.update(deployed_ram=ram, deployed_flash=flash, harness_ram=300, harness_flash=2500,
                                    peak_ram=ram + 300, flash=flash + 2500)
                append_rows(path, make_rows("qemu-an386", c, 3, 100, epochs, epochs, measured, PROV))


COEF = {"collection": {"macs_conv2d": 4.5, "macs_fc": 3.9, "output_elements": 80.0, "samples": 30.0},
        "training": {"forward_macs": 7.0, "gradient_macs": 6.0, "parameter_updates": 17.0, "softmax_terms": 90.0,
                     "epochs": 500.0, "parameter_copies": 16.0},
        "evaluation": {"macs_conv2d": 4.5, "forward_macs": 6.0, "samples": 50.0}}


def test_fit_recovers_known_costs_and_cross_validates(tmp_path):
    path = tmp_path / "runs.csv"
    _synthetic(path, COEF)
    runs = load_runs(path)
    cal = fit_firmware(runs, "qemu-an386")
    for r in runs:
        if r.metric in ("instructions", "deployed_ram", "deployed_flash", "harness_ram", "harness_flash"):
            assert predict_run(cal, r) == pytest.approx(r.value, rel=5e-3), r.cost  # collinear columns: NNLS picks
    assert sum(cal.ram[k] for k in RUNTIME) == pytest.approx(500, abs=1)  # shared + stored mode's own
    assert cal.ram["parameter_arrays"] == pytest.approx(1.0, rel=1e-6)
    assert (cal.ram[fm.HARNESS], cal.flash[fm.HARNESS]) == (300, 2500)
    summary = {e.cost: e for e in summarize(cross_validate(runs, "qemu-an386"))}
    assert summary["instructions.training"].n > 0
    assert summary["instructions.training"].worst < 0.01
    assert summary["deployed_ram"].within_5 == 1.0 and summary["deployed_flash"].within_5 == 1.0


def test_legacy_records_are_read_as_the_deployed_image(tmp_path):
    """Runs measured before the deployed ELF existed fit the same deployed-image model: flash less the stored
    inputs, RAM plus the sensor buffer and labels; no harness share is predicted from them."""
    _synthetic(tmp_path / "new.csv", COEF)
    _synthetic(tmp_path / "old.csv", COEF, legacy=True)
    new = fit_firmware(load_runs(tmp_path / "new.csv"), "qemu-an386")
    old = fit_firmware(load_runs(tmp_path / "old.csv"), "qemu-an386")
    for r in load_runs(tmp_path / "new.csv"):
        if r.metric in ("deployed_ram", "deployed_flash"):
            assert predict_run(old, r) == pytest.approx(predict_run(new, r), rel=1e-3)
    assert fm.HARNESS not in old.flash and any("harness" in n for n in old.notes)


def test_record_errors_name_file_line_column(tmp_path):
    path = tmp_path / "runs.csv"
    _synthetic(path, COEF)
    rows = list(csv.DictReader(path.open()))
    rows[3]["head_params"] = "7"
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(RunRecordError, match=r"bad.csv, line 5, column head_params: .*'7'"):
        load_runs(bad)
    assert len(measured_keys(path)) == len({r["key"] for r in rows})


def test_improvements_column_is_optional_and_kept(tmp_path):
    """Files written before the firmware reported its improvements load (copies bounded by the best epoch) and
    keep their header when appended to; reported improvements are the copies the model counts."""
    path = tmp_path / "runs.csv"
    _synthetic(path, COEF)
    rows = list(csv.DictReader(path.open()))
    assert rows[0]["improvements"] == "" and load_runs(path)[0].improvements is None
    old = tmp_path / "old.csv"
    columns = [c for c in rows[0] if c != "improvements"]
    with old.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows[:4])
    c = Configuration("digits", "digits_cnn", "fc1", 8, 40, 5)
    append_rows(old, make_rows("qemu-an386", c, 3, 10, 5, 4, {"flash": 1000}, PROV, improvements=2))
    assert next(csv.reader(old.open())) == columns
    loaded = load_runs(old)
    assert loaded[-1].improvements is None and loaded[-1].copies == 4  # the column was not there to keep it
    new = tmp_path / "new.csv"
    append_rows(new, make_rows("qemu-an386", c, 3, 10, 5, 4, {"flash": 1000}, PROV, improvements=2))
    assert load_runs(new)[0].improvements == 2 and load_runs(new)[0].copies == 2
    bad = tmp_path / "bad.csv"
    append_rows(bad, make_rows("qemu-an386", c, 3, 10, 5, 4, {"flash": 1000}, PROV, improvements=2))
    bad.write_text(bad.read_text().replace(",4,2,", ",4,5,"))
    with pytest.raises(RunRecordError, match="column improvements: more than the best epoch 4"):
        load_runs(bad)
    strange = tmp_path / "strange.csv"
    strange.write_text("key,board,whatever\n")
    with pytest.raises(RunRecordError, match="header does not match"):
        append_rows(strange, make_rows("qemu-an386", c, 3, 10, 5, 4, {"flash": 1000}, PROV))


def test_memory_terms_follow_the_c_arrays():
    c = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=100, epochs=5, batch=8)
    w = workload_from_config(c, 3)
    ram = fm.ram_terms(w)
    params = 128 * 8 + 8 + 8 * 3 + 3
    assert ram["head_weights"] == ram["update_buffer"] == ram["best_weights"] == 4 * params
    assert ram["train_activations"] == (2 * 8 + 3) * 4 and ram["predict_activations"] == (8 + 3) * 4
    assert ram["shuffle_index"] == 2 * c.train_samples
    assert ram["sample_store"] == 100 * 128
    # momentum 0 and batch 1: no update buffer; restore_best off: no best copy
    lean = fm.ram_terms(workload_from_config(Configuration(**{**c.to_dict(), "momentum": 0.0, "batch": 1,
                                                              "restore_best": False}), 3))
    assert lean["update_buffer"] == lean["best_weights"] == 0 and lean["head_weights"] == 4 * params


def test_shipped_qemu_records_predict_their_runs():
    """The committed campaign fits: every phase's instructions within +-0.5% of every run in sample (the training
    phase's data-dependent rest -- weight copies per improvement, the shuffle's comparisons, branches -- is below
    that), the deployed image's memory within the issue's targets (campaign runs that predate the deployed ELF
    enter through deployed_view)."""
    cal = load_firmware_calibration("qemu-an386")
    runs = [r for r in deployed_view(load_runs(SHIPPED / "campaign.csv"))
            if r.config.model == "digits_cnn"]  # recurrent models: tests/test_calib_rnn_model.py
    assert cal.runs >= 90
    for r in runs:
        if r.metric == "instructions":
            assert abs(predict_run(cal, r) / r.value - 1) < 0.005, r.key
        elif r.metric in ("deployed_ram", "deployed_flash"):
            assert abs(predict_run(cal, r) - r.value) <= max(256, 0.01 * r.value), r.key


def test_predict_on_the_emulated_board_gives_instructions_not_time():
    c = Configuration(task="digits", model="digits_cnn", cut="conv2", hidden=16, samples=120, epochs=10, batch=8)
    p = predict(c, "qemu-an386", epochs_run=8, test_inputs=178)
    assert set(p.instructions) == {"collection", "training", "evaluation"}
    assert all(v > 0 for v in p.instructions.values())
    assert p.phases_included == () and p.ble_upload is None
    d = p.to_dict()
    assert d["instructions.training"] == p.instructions["training"] and "ble.bytes" not in d
    assert p.ram["best_weights"] > 0 and p.ram_total == sum(p.ram.values())
    # more samples: exactly the feature bytes more in the store, more collection instructions
    q = predict(c.__class__(**{**c.to_dict(), "samples": 130}), "qemu-an386", epochs_run=8, test_inputs=178)
    assert q.ram["sample_store"] - p.ram["sample_store"] == 10 * 512
    assert q.instructions["collection"] > p.instructions["collection"]


def test_shape_factor_absorbs_one_shapes_code_and_only_in_sample(tmp_path):
    """A shape whose compiled trainer retires 2% more than the counts model gets factor 1.02 from its own runs;
    left out (cross-validation), it is priced by the counts alone."""
    path = tmp_path / "runs.csv"
    _synthetic(path, COEF)
    rows = list(csv.DictReader(path.open()))
    odd = "digits/digits_cnn/pool2/h8/"
    for row in rows:
        if row["key"].startswith(odd) and row["metric"] == "instructions" and row["phase"] == "training":
            row["value"] = str(round(int(row["value"]) * 1.02))
    skewed = tmp_path / "skewed.csv"
    with skewed.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    runs = load_runs(skewed)
    cal = fit_firmware(runs, "qemu-an386")
    pool2_h8 = {k: v for k, v in cal.shape_factors.items() if k.startswith("digits_cnn/pool2/h8/")}
    assert pool2_h8 and all(1.01 < v < 1.025 for v in pool2_h8.values())  # the global fit leans a little towards it
    assert any("factors of" in n for n in cal.notes)
    for r in runs:
        if r.cost == "instructions.training":
            assert predict_run(cal, r) == pytest.approx(r.value, rel=2e-3), r.key
    points = [p for p in cross_validate(runs, "qemu-an386") if p.cost == "instructions.training"
              and p.key.startswith(odd)]
    assert points and all(p.rel_error == pytest.approx(1 / 1.02 - 1, abs=5e-3) for p in points)


def test_snapshot_keeps_shape_factors(tmp_path):
    from cost_models.microtl_dse.fit import read_firmware_calibration, save_firmware_calibration

    cal = load_firmware_calibration("qemu-an386")
    save_firmware_calibration(cal, tmp_path / "cal.json")
    back = read_firmware_calibration(tmp_path / "cal.json")
    assert back.shape_factors == cal.shape_factors and len(back.shape_factors) >= 40
