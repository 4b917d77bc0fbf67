"""Misuse of every `dse` command: each bad input (arguments, study-file keys and values, storage URLs, paths, study
folders and their databases, record and board files, numbers) ends in exactly one stderr line `dse: error: ...`
naming the offending file, key or value, exit code 2, no traceback, and nothing written anywhere in the working
folder.

Run in-process through dse.cli.main (fast); a handful also through the real `dse` executable."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dse.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()
LONG = "x" * 5000
SECRET = "s3cr3tPW"


# --- the world every case runs in ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A folder with a finished tiny study (`good`), damaged copies of it and bad files of every kind."""
    root = tmp_path_factory.mktemp("world")
    (root / "tiny.toml").write_text(TINY)
    env = os.environ.copy()
    env["OMP_NUM_THREADS"] = "1"
    assert main(["run", str(root / "tiny.toml"), "--out", str(root / "good"), "--trials", "3", "--quiet"]) == 0
    with sqlite3.connect(root / "good" / "study.db") as con:  # the WAL into the file: copies are complete
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    db = (root / "good" / "study.db").read_bytes()
    (root / "afile").write_text("just a file\n")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 16)
    (root / "binary.toml").write_bytes(bytes(range(256)) * 16)
    (root / "empty.toml").write_text("")
    (root / "emptydir").mkdir()
    (root / "recs").mkdir()
    (root / "recs" / "campaign.csv").write_bytes(bytes(range(128, 256)) * 20)
    (root / "badjson").mkdir()
    (root / "badjson" / "trial-0-host.json").write_text("{not json")
    (root / "snap.json").write_text("{not json")
    damaged = {
        "empty_db": b"",
        "garbage_db": bytes(range(256)) * 32,
        "truncated_db": db[: len(db) // 3],
        "header_only_db": db[:100],
    }
    for name, content in damaged.items():
        shutil.copytree(root / "good", root / name)
        (root / name / "study.db").write_bytes(content)
    shutil.copytree(root / "good", root / "db_is_dir")
    (root / "db_is_dir" / "study.db").unlink()
    (root / "db_is_dir" / "study.db").mkdir()
    shutil.copytree(root / "good", root / "no_db")
    (root / "no_db" / "study.db").unlink()
    for name, pointer in {"no_pointer": None, "garbage_pointer": "{not json", "list_pointer": "[1, 2]",
                          "other_study": '{"study_name": "other", "storage": null}',
                          "bad_storage_pointer": '{"study_name": "tiny", "storage": "nosuchdb://x/y"}',
                          "number_storage_pointer": '{"study_name": "tiny", "storage": 42}'}.items():
        shutil.copytree(root / "good", root / name)
        (root / name / "study.json").unlink()
        if pointer is not None:
            (root / name / "study.json").write_text(pointer)
    shutil.copytree(root / "good", root / "validations_file")
    (root / "validations_file" / "validations").write_text("not a folder\n")
    for name, text in STUDY_FILES.items():
        (root / f"{name}.toml").write_text(text)
    (root / "binary_study.toml").write_bytes(bytes(range(256)) * 4)
    return root


def _variant(old: str, new: str) -> str:
    assert old in TINY, old
    return TINY.replace(old, new, 1)


# study files with one bad key or value each (the needle names the key)
STUDY_FILES = {
    "unknown_section": TINY + "\n[extra]\nx = 1\n",
    "unknown_key": _variant('seed = 0', 'seed = 0\ncolour = "red"'),
    "name_spaces": _variant('name = "tiny"', 'name = "my study"'),
    "name_long": _variant('name = "tiny"', f'name = "{"n" * 100_000}"'),
    "name_number": _variant('name = "tiny"', 'name = 5'),
    "name_slash": _variant('name = "tiny"', 'name = "../../etc"'),
    "trials_zero": _variant("trials = 6", "trials = 0"),
    "trials_text": _variant("trials = 6", 'trials = "six"'),
    "trials_float": _variant("trials = 6", "trials = 6.5"),
    "repeats_zero": _variant("repeats = 2", "repeats = 0"),
    "seed_negative": _variant("seed = 0", "seed = -1"),
    "sampler_unknown": _variant('sampler = "random"', 'sampler = "magic"'),
    "population_tpe": _variant('sampler = "random"', 'sampler = "tpe"\npopulation = 10'),
    "population_one": _variant('sampler = "random"', 'sampler = "nsga2"\npopulation = 1'),
    "storage_not_url": _variant("seed = 0", 'seed = 0\nstorage = "not a url"'),
    "storage_memory": _variant("seed = 0", 'seed = 0\nstorage = "sqlite:///:memory:"'),
    "storage_number": _variant("seed = 0", "seed = 0\nstorage = 5"),
    "storage_unknown_db": _variant("seed = 0", 'seed = 0\nstorage = "nosuchdb://x/y"'),
    "storage_passwd": _variant("seed = 0", 'seed = 0\nstorage = "sqlite:////etc/passwd"'),
    "storage_bad_host": _variant("seed = 0", 'seed = 0\nstorage = "postgresql://::@@/"'),
    "task_unknown": _variant('name = "digits"', 'name = "nosuchtask"'),
    "task_data_not_taken": _variant('name = "digits"', 'name = "digits"\ndata = "x.npz"'),
    "model_unknown": _variant('name = "digits_cnn"', 'name = "nosuchmodel"'),
    "model_wrong_input": _variant('name = "digits_cnn"', 'name = "cifar_cnn"'),
    "board_unknown": _variant('name = "nrf52840dk"', 'name = "esp32"'),
    "board_firmware": _variant('name = "nrf52840dk"', 'name = "nrf52840dk"\nfirmware = "mine"'),
    "cut_unknown": _variant('cut = ["conv2", "pool2"]', 'cut = ["conv9"]'),
    "cut_empty": _variant('cut = ["conv2", "pool2"]', "cut = []"),
    "hidden_negative": _variant("hidden = [0, 8]", "hidden = [-1, 8]"),
    "samples_reversed": _variant("samples = { low = 20, high = 60, step = 20 }",
                                 "samples = { low = 60, high = 20 }"),
    "samples_zero": _variant("samples = { low = 20, high = 60, step = 20 }", "samples = 0"),
    "epochs_zero": _variant("epochs = 5", "epochs = 0"),
    "batch_text": _variant("batch = 8", 'batch = "eight"'),
    "lr_negative": _variant("lr = { low = 0.01, high = 0.05 }", "lr = { low = -0.01, high = 0.05 }"),
    "space_unknown": _variant("batch = 8", "batch = 8\nwings = 2"),
    "space_missing_cut": _variant('cut = ["conv2", "pool2"]\n', ""),
    "objective_unknown": _variant('accuracy = "maximize"', 'accuracy = "maximize"\nbeauty = "maximize"'),
    "objective_direction": _variant('accuracy = "maximize"', 'accuracy = "up"'),
    "constraint_unknown": _variant("ram_kb = 64", "ram_kb = 64\nweight_g = 3"),
    "constraint_negative": _variant("ram_kb = 64", "ram_kb = -64"),
    "constraint_text": _variant("ram_kb = 64", 'ram_kb = "lots"'),
    "grid_infinite": _variant('sampler = "random"', 'sampler = "grid"'),
    # streaming as a design axis (issue 14)
    "mode_unknown": _variant("batch = 8", 'batch = 8\nmode = ["stored", "online"]'),
    "mode_number": _variant("batch = 8", "batch = 8\nmode = 3"),
    "replay_without_mode": _variant("batch = 8", "batch = 8\nreplay = [0, 8]"),
    "replay_stored_only": _variant("batch = 8", 'batch = 8\nmode = "stored"\nreplay = [8]'),
    "replay_over_samples": _variant("batch = 8", 'batch = 8\nmode = ["stored", "streaming"]\nreplay = [0, 80]'),
    "replay_negative": _variant("batch = 8", 'batch = 8\nmode = ["stored", "streaming"]\nreplay = [-1, 8]'),
    "streaming_only_batch": _variant("batch = 8", 'batch = 8\nmode = "streaming"'),
    "streaming_paper_firmware": _variant("batch = 8", 'batch = 8\nmode = ["stored", "streaming"]').replace(
        'name = "nrf52840dk"', 'name = "nrf52840dk"\nfirmware = "paper"', 1),
    "lifetime_without_deployment": _variant('accuracy = "maximize"', 'accuracy = "maximize"\nlifetime = "maximize"'),
    "deployment_missing_key": TINY + "\n[deployment]\nbattery_mah = 225\nbattery_v = 3.0\ninferences_per_hour = 60\n",
    "deployment_negative": TINY + "\n[deployment]\nbattery_mah = -225\nbattery_v = 3.0\ninferences_per_hour = 60\n"
                                  "adaptations_per_month = 4\n",
    "not_toml": "[study\nname = ",
    "missing_study_section": TINY.replace("[study]", "[studyx]"),
}
STUDY_NEEDLES = {
    "unknown_section": "extra", "unknown_key": "study.colour", "name_spaces": "study.name",
    "name_long": "study.name", "name_number": "study.name", "name_slash": "study.name", "trials_zero": "study.trials",
    "trials_text": "study.trials", "trials_float": "study.trials", "repeats_zero": "study.repeats",
    "seed_negative": "study.seed", "sampler_unknown": "study.sampler", "population_tpe": "study.population",
    "population_one": "study.population", "storage_not_url": "study.storage", "storage_memory": "study.storage",
    "storage_number": "study.storage", "storage_unknown_db": "nosuchdb", "storage_passwd": "/etc/passwd",
    "storage_bad_host": "postgresql://", "task_unknown": "task.name", "task_data_not_taken": "task.data",
    "model_unknown": "model.name", "model_wrong_input": "model.name", "board_unknown": "esp32",
    "board_firmware": "board.firmware", "cut_unknown": "space.cut", "cut_empty": "space.cut",
    "hidden_negative": "space.hidden", "samples_reversed": "space.samples", "samples_zero": "space.samples",
    "epochs_zero": "space.epochs", "batch_text": "space.batch", "lr_negative": "space.lr",
    "space_unknown": "space.wings", "space_missing_cut": "space.cut", "objective_unknown": "objectives.beauty",
    "objective_direction": "objectives.accuracy", "constraint_unknown": "constraints.weight_g",
    "constraint_negative": "constraints.ram_kb", "constraint_text": "constraints.ram_kb",
    "grid_infinite": "space.lr", "not_toml": "not valid TOML", "missing_study_section": "study",
    "mode_unknown": "space.mode", "mode_number": "space.mode", "replay_without_mode": "space.replay",
    "replay_stored_only": "space.replay", "replay_over_samples": "space.replay", "replay_negative": "space.replay",
    "streaming_only_batch": "space.batch", "streaming_paper_firmware": "board.firmware",
    "lifetime_without_deployment": "objectives.lifetime", "deployment_missing_key": "deployment.adaptations_per_month",
    "deployment_negative": "deployment.battery_mah",
}

PREDICT = ["predict", "--model", "digits_cnn", "--board", "nrf52840dk", "--cut", "conv2", "--hidden", "8",
           "--samples", "40", "--epochs", "5"]


def _predict(**change) -> list[str]:
    argv = PREDICT[:]
    for flag, value in change.items():
        flag = "--" + flag
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


FOLDER_CASES = {  # study folder -> what the error line names
    "missing": "missing", "afile": "afile", LONG: "name too long", "afile/sub": "afile/sub",
    "emptydir": "not a study folder", "no_pointer": "not a study folder", "garbage_pointer": "study.json",
    "list_pointer": "study.json", "number_storage_pointer": "study.json", "other_study": "'other'",
    "bad_storage_pointer": "nosuchdb", "no_db": "study.db", "db_is_dir": "study.db", "empty_db": "0 bytes",
    "garbage_db": "not an SQLite database", "truncated_db": "study.db", "header_only_db": "study.db",
}
FOLDER_COMMANDS = {
    "show": [], "report": [], "rescore": [], "validate": ["--trial", "0", "--board", "host"],
}

# (argv with {w} for the world folder, needle in the error line)
CASES: list[tuple[str, list[str], str]] = []
CASES += [(f"study-file:{name}", ["run", "{w}/" + f"{name}.toml", "--out", "{w}/out"], STUDY_NEEDLES[name])
          for name in STUDY_FILES]
CASES += [(f"{cmd}:folder:{folder[:20]}", [cmd, "{w}/" + folder, *extra], needle)
          for cmd, extra in FOLDER_COMMANDS.items() for folder, needle in FOLDER_CASES.items()]
CASES += [
    # run: the study file itself, --out, --storage, numbers
    ("run:no-such-file", ["run", "{w}/nothing.toml"], "nothing.toml"),
    ("run:study-is-folder", ["run", "{w}/emptydir"], "emptydir"),
    ("run:study-binary", ["run", "{w}/binary_study.toml"], "binary_study.toml"),
    ("run:study-empty", ["run", "{w}/empty.toml"], "empty.toml"),
    ("run:out-file", ["run", "{w}/tiny.toml", "--out", "{w}/afile"], "afile"),
    ("run:out-dev-null", ["run", "{w}/tiny.toml", "--out", "/dev/null"], "/dev/null"),
    ("run:out-under-file", ["run", "{w}/tiny.toml", "--out", "{w}/afile/sub"], "afile/sub"),
    ("run:out-long", ["run", "{w}/tiny.toml", "--out", "{w}/" + LONG], "name too long"),
    ("run:out-other-study", ["run", "{w}/tiny.toml", "--out", "{w}/other_study"], "'other'"),
    ("run:out-garbage-db", ["run", "{w}/tiny.toml", "--out", "{w}/garbage_db"], "not an SQLite database"),
    ("run:out-empty-db", ["run", "{w}/tiny.toml", "--out", "{w}/empty_db"], "0 bytes"),
    ("run:storage-not-url", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "not a url"], "not a url"),
    ("run:storage-unknown-db", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "nosuchdb://x/y"],
     "nosuchdb"),
    ("run:storage-bad-host", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "postgresql://::@@/"],
     "postgresql://"),
    ("run:storage-passwd", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "sqlite:////etc/passwd"],
     "/etc/passwd"),
    ("run:storage-memory", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "sqlite:///:memory:"],
     "in-memory"),
    ("run:storage-no-file", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "sqlite://"], "sqlite://"),
    ("run:storage-dir", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "sqlite:///{w}/emptydir"],
     "emptydir"),
    ("run:storage-under-file", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage",
                                "sqlite:///{w}/afile/x.db"], "afile"),
    ("run:storage-closed-port", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage",
                                 f"postgresql+psycopg2://dse:{SECRET}@127.0.0.1:9/microtl"], "127.0.0.1"),
    ("run:storage-mysql-no-driver", ["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage",
                                     f"mysql://dse:{SECRET}@127.0.0.1:9/microtl"], "mysql://dse:***@"),
    ("run:trials-zero", ["run", "{w}/tiny.toml", "--trials", "0"], "--trials"),
    ("run:trials-text", ["run", "{w}/tiny.toml", "--trials", "many"], "--trials"),
    ("run:trials-float", ["run", "{w}/tiny.toml", "--trials", "1e3"], "--trials"),
    ("run:trials-huge-text", ["run", "{w}/tiny.toml", "--trials", "9" * 5000], "--trials"),
    ("run:workers-zero", ["run", "{w}/tiny.toml", "--workers", "0"], "--workers"),
    ("run:unknown-flag", ["run", "{w}/tiny.toml", "--fast"], "--fast"),
    ("run:no-study", ["run"], "STUDY.toml"),
    ("cli:unknown-command", ["fly"], "fly"),
    ("cli:no-command", [], "COMMAND"),
    # worker
    ("worker:no-storage", ["worker", "{w}/tiny.toml"], "study.storage"),
    ("worker:storage-not-url", ["worker", "{w}/tiny.toml", "--storage", "not a url"], "not a url"),
    ("worker:storage-unknown-db", ["worker", "{w}/tiny.toml", "--storage", "nosuchdb://x/y"], "nosuchdb"),
    ("worker:storage-closed-port", ["worker", "{w}/tiny.toml", "--storage",
                                    f"postgresql+psycopg2://dse:{SECRET}@127.0.0.1:9/microtl"], "127.0.0.1"),
    ("worker:storage-garbage-db", ["worker", "{w}/tiny.toml", "--storage", "sqlite:///{w}/garbage_db/study.db"],
     "not an SQLite database"),
    ("worker:index-negative", ["worker", "{w}/tiny.toml", "--index", "-1"], "--index"),
    ("worker:bad-study", ["worker", "{w}/trials_zero.toml", "--storage", "sqlite:///{w}/x.db"], "study.trials"),
    # show / report extra arguments
    ("show:no-folder", ["show"], "DIR"),
    ("report:no-folder", ["report"], "DIR"),
    ("report:two-folders", ["report", "{w}/good", "{w}/good"], "unrecognized"),
    # validate
    ("validate:validations-is-file", ["validate", "{w}/validations_file", "--trial", "0", "--board", "host"],
     "validations"),
    ("validate:unknown-trial", ["validate", "{w}/good", "--trial", "999", "--board", "host"], "999"),
    ("validate:unknown-board", ["validate", "{w}/good", "--trial", "0", "--board", "esp32"], "esp32"),
    ("validate:board-binary", ["validate", "{w}/good", "--trial", "0", "--board", "{w}/binary.toml"],
     "binary.toml"),
    ("validate:ppk2-on-host", ["validate", "{w}/good", "--trial", "0", "--board", "host", "--ppk2"], "--ppk2"),
    ("validate:no-board", ["validate", "{w}/good", "--trial", "0"], "--board"),
    ("validate:no-trial", ["validate", "{w}/good", "--board", "host"], "--trial"),
    ("validate:trial-and-picks", ["validate", "{w}/good", "--trial", "0", "--picks", "1", "--board", "host"],
     "--picks"),
    ("validate:trial-negative", ["validate", "{w}/good", "--trial", "-1", "--board", "host"], "--trial"),
    ("validate:picks-zero", ["validate", "{w}/good", "--picks", "0", "--board", "host"], "--picks"),
    ("validate:timeout-zero", ["validate", "{w}/good", "--trial", "0", "--board", "host", "--timeout", "0"],
     "--timeout"),
    ("validate:timeout-nan", ["validate", "{w}/good", "--trial", "0", "--board", "host", "--timeout", "nan"],
     "--timeout"),
    ("validate:timeout-inf", ["validate", "{w}/good", "--trial", "0", "--board", "host", "--timeout", "inf"],
     "--timeout"),
    ("validate:timeout-text", ["validate", "{w}/good", "--trial", "0", "--board", "host", "--timeout", "soon"],
     "--timeout"),
    # rescore
    ("rescore:unknown-board", ["rescore", "{w}/good", "--board", "esp32"], "esp32"),
    ("rescore:board-binary", ["rescore", "{w}/good", "--board", "{w}/binary.toml"], "binary.toml"),
    ("rescore:calibration-missing", ["rescore", "{w}/good", "--calibration", "{w}/nothing.json"], "nothing.json"),
    ("rescore:calibration-garbage", ["rescore", "{w}/good", "--calibration", "{w}/snap.json"], "snap.json"),
    ("rescore:calibration-binary", ["rescore", "{w}/good", "--calibration", "{w}/binary.bin"], "binary.bin"),
    ("rescore:calibration-dir", ["rescore", "{w}/good", "--calibration", "{w}/emptydir"], "emptydir"),
    # calibrate
    ("calibrate:no-board", ["calibrate"], "--board"),
    ("calibrate:unknown-board", ["calibrate", "--board", "esp32"], "esp32"),
    ("calibrate:records-file", ["calibrate", "--board", "qemu-an386", "--records", "{w}/afile", "--refit"],
     "afile"),
    ("calibrate:records-binary-campaign", ["calibrate", "--board", "qemu-an386", "--records", "{w}/recs",
                                           "--refit"], "campaign.csv"),
    ("calibrate:records-empty", ["calibrate", "--board", "qemu-an386", "--records", "{w}/emptydir", "--refit"],
     "emptydir"),
    ("calibrate:add-missing", ["calibrate", "--board", "qemu-an386", "--records", "{w}/emptydir", "--add",
                               "{w}/nothing"], "nothing"),
    ("calibrate:add-empty", ["calibrate", "--board", "qemu-an386", "--records", "{w}/emptydir", "--add",
                             "{w}/emptydir"], "emptydir"),
    ("calibrate:add-garbage-record", ["calibrate", "--board", "qemu-an386", "--records", "{w}/emptydir",
                                      "--add", "{w}/badjson"], "trial-0-host.json"),
    ("calibrate:out-dir", ["calibrate", "--board", "qemu-an386", "--refit", "--out", "{w}/emptydir"], "emptydir"),
    ("calibrate:out-under-file", ["calibrate", "--board", "qemu-an386", "--refit", "--out", "{w}/afile/c.json"],
     "afile"),
    ("calibrate:plots-file", ["calibrate", "--board", "qemu-an386", "--report", "--plots", "{w}/afile"], "afile"),
    ("calibrate:work-file", ["calibrate", "--board", "qemu-an386", "--work", "{w}/afile"], "afile"),
    ("calibrate:map-records", ["calibrate", "--board", "nrf52840dk", "--records", "{w}/recs"], "--board"),
    # predict
    ("predict:samples-huge", _predict(samples="1000000000000"), "--samples"),
    ("predict:samples-zero", _predict(samples="0"), "--samples"),
    ("predict:samples-text", _predict(samples="lots"), "--samples"),
    ("predict:hidden-negative", _predict(hidden="-1"), "--hidden"),
    ("predict:epochs-zero", _predict(epochs="0"), "--epochs"),
    ("predict:batch-zero", _predict(batch="0"), "--batch"),
    ("predict:classes-zero", _predict(classes="0"), "--classes"),
    ("predict:firmware-unknown", _predict(firmware="mine"), "--firmware"),
    ("predict:model-unknown", _predict(model="nosuchmodel"), "nosuchmodel"),
    ("predict:board-unknown", _predict(board="esp32"), "esp32"),
    ("predict:board-binary-file", _predict(board="{w}/binary.toml"), "binary.toml"),
    ("predict:board-missing-file", _predict(board="{w}/nothing.toml"), "nothing.toml"),
    ("predict:board-empty-file", _predict(board="{w}/empty.toml"), "empty.toml"),
    ("predict:board-folder", _predict(board="{w}/emptydir/"), "emptydir"),
    ("predict:cut-unknown", _predict(cut="conv9"), "conv9"),
    ("predict:task-unknown", _predict(task="nosuchtask"), "nosuchtask"),
    ("predict:task-without-classes", _predict(task="npz"), "--classes"),
    ("predict:paper-on-emulator", _predict(board="qemu-an386", firmware="paper"), "qemu-an386"),
    ("predict:mode-unknown", _predict(mode="online"), "--mode"),
    ("predict:streaming-epochs", _predict(mode="streaming"), "--epochs 5"),
    ("predict:streaming-batch", [a for a in _predict(mode="streaming", batch="8") if a not in ("--epochs", "5")],
     "--batch 8"),
    ("predict:streaming-restore-best", [a for a in _predict(mode="streaming") if a not in ("--epochs", "5")]
     + ["--restore-best"], "--restore-best"),
    ("predict:replay-stored", _predict(replay="8"), "--replay 8"),
    ("predict:replay-negative", _predict(mode="streaming", replay="-1"), "--replay"),
    ("predict:replay-over-samples", [a for a in _predict(mode="streaming", replay="41") if a not in ("--epochs", "5")],
     "--replay 41"),
    ("predict:stored-without-epochs", [a for a in PREDICT if a not in ("--epochs", "5")], "--epochs"),
    ("predict:no-model", ["predict", "--board", "nrf52840dk"], "--model"),
    # model
    ("model:unknown", ["model", "nosuchmodel"], "nosuchmodel"),
    ("model:unknown-cut", ["model", "digits_cnn", "--cut", "conv9"], "conv9"),
    ("model:cut-without-name", ["model", "--cut", "conv1"], "--cut"),
    ("model:hidden-negative", ["model", "digits_cnn", "--hidden", "-1"], "--hidden"),
    ("model:classes-zero", ["model", "digits_cnn", "--classes", "0"], "--classes"),
    # paper
    ("paper:no-data", ["paper"], "--data"),
    ("paper:data-missing", ["paper", "--data", "{w}/nothing", "--out", "{w}/p"], "nothing"),
    ("paper:out-file", ["paper", "--data", "{w}/emptydir", "--out", "{w}/afile"], "afile"),
    ("paper:out-under-file", ["paper", "--data", "{w}/emptydir", "--out", "{w}/afile/p"], "afile"),
    ("paper:task-unknown", ["paper", "--data", "{w}/emptydir", "--task", "mnist"], "--task"),
    ("paper:samples-zero", ["paper", "--data", "{w}/emptydir", "--samples", "0"], "--samples"),
    ("paper:repeats-text", ["paper", "--data", "{w}/emptydir", "--repeats", "x"], "--repeats"),
]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under root with size and modification time (SQLite's -wal/-shm companions aside:
    a reader may open them)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if name.endswith(("-wal", "-shm")):
                continue
            st = path.lstat()
            # a folder by its name only: its mtime moves when a reader's -wal/-shm come and go
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns) if path.is_file() else "folder"
    return out


def _argv(argv: list[str], world: Path) -> list[str]:
    return [a.replace("{w}", str(world)) for a in argv]


def test_the_table_is_large_enough():
    assert len(CASES) >= 120
    assert len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES if c[1]}
    assert commands >= {"run", "worker", "show", "report", "validate", "rescore", "calibrate", "predict", "model",
                        "paper"}


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_nothing_written(world, monkeypatch, capsys, argv, needle):
    monkeypatch.chdir(world)  # relative defaults (runs/...) land in the world too
    before = snapshot(world)
    code = main(_argv(argv, world))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("dse: error: "), err
    assert "Traceback" not in err
    assert needle.replace("{w}", str(world)) in lines[0], lines[0]
    assert SECRET not in err + out
    assert len(lines[0]) < 1000  # a pasted 5,000 / 100,000-character value is shown shortened
    assert snapshot(world) == before


@pytest.mark.parametrize("argv, needle", [
    (["show", "{w}/garbage_db"], "not an SQLite database"),
    (["report", "{w}/truncated_db"], "study.db"),
    (["run", "{w}/tiny.toml", "--out", "{w}/o", "--storage", "nosuchdb://x/y"], "nosuchdb"),
    (_predict(samples="1000000000000"), "--samples"),
    (_predict(board="{w}/binary.toml"), "binary.toml"),
])
def test_bad_input_through_the_real_command(world, argv, needle):
    before = snapshot(world)
    dse = Path(sys.executable).with_name("dse")
    proc = subprocess.run([str(dse), *_argv(argv, world)], capture_output=True, text=True, cwd=world, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("dse: error: ") and needle in lines[0], proc.stderr
    assert snapshot(world) == before


def test_empty_database_keeps_its_zero_bytes(world, capsys):
    """`dse show` on a 0-byte study.db refuses it and does not write a schema into it."""
    db = world / "empty_db" / "study.db"
    assert main(["show", str(db.parent)]) == 2
    assert db.stat().st_size == 0
    capsys.readouterr()


def test_killed_validate_leaves_nothing_in_the_system_temp_folder(world, tmp_path):
    """kill -9 of `dse validate --board qemu-an386` while QEMU runs: its scratch folder is under the study's
    validations/work, never in the system temporary folder (here a private TMPDIR)."""
    import signal
    import time

    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("needs qemu-system-arm and arm-none-eabi-gcc")
    folder = tmp_path / "study"
    shutil.copytree(world / "good", folder)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    dse = Path(sys.executable).with_name("dse")
    proc = subprocess.Popen([str(dse), "validate", str(folder), "--trial", "0", "--board", "qemu-an386"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    work = folder / "validations" / "work"
    try:
        deadline = time.monotonic() + 240
        while not list(work.rglob("qemu-an386-*")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(work.rglob("qemu-an386-*")), "QEMU never started beside the ELF"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # dse and its QEMU
        proc.wait()
    assert not list(tmp.rglob("qemu-an386-*"))
