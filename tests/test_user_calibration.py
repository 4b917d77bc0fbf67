"""User data never goes into the package: the project installed NON-editable into a fresh virtualenv (over the shared
packages), `dse calibrate --add` writes the imported records to the user's calibration folder
(MICROTL_CALIBRATION_DIR), `dse rescore` prices with them on top of the shipped defaults, and not one file of the
installed package changes. Also, in-process: --calibration-dir, the layering (a user file replaces the shipped one
of its name), and a refit map written to the user's folder."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import model_cache_at

from cost_models.board import load_board
from cost_models.microtl_dse.fit import clear_firmware_cache, load_firmware_calibration
from dse.cli import main
from dse.search.optimize import run_study
from dse.study.file import load_study_file
from firmware.records import write_record
from vocabulary.configuration import Configuration
from vocabulary.validation_record import Measured, Provenance, ValidationRecord

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("vocabulary", "dse", "models", "cost_models", "firmware")
SOURCES = ("pyproject.toml", "README.md", *PACKAGES)


def validation_records(folder: Path) -> Path:
    """One ok qemu-an386 validation record (instruction counts per phase), as `dse validate` writes them."""
    config = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=16, samples=40, epochs=3, batch=8)
    record = ValidationRecord(
        study="s", trial=7, board="qemu-an386", status="ok", configuration=config.to_dict(),
        provenance=Provenance(sources_sha256="c" * 64, elf_sha256="d" * 64, toolchain="gcc",
                              board_versions={"qemu": "QEMU 7.2"}, date_utc="2025-01-02T00:00"),
        measured=Measured(epochs_run=3, best_epoch=3, test=178, flash_bytes=30000, static_ram_bytes=30000,
                          stack_bytes=400, heap_bytes=0, peak_ram_bytes=30400,
                          instructions={"collection": 10**6, "training": 2 * 10**6, "evaluation": 3 * 10**6}))
    write_record(record, folder)
    return folder


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` but bytecode caches, by its sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_calibrate_add_writes_the_user_folder_not_the_package(tmp_path, capsys, monkeypatch):
    user = tmp_path / "user-cal"
    shipped = REPO / "cost_models" / "calibration" / "qemu-an386"
    before = tree_digest(shipped)
    vdir = validation_records(tmp_path / "validations")
    assert main(["calibrate", "--board", "qemu-an386", "--add", str(vdir), "--calibration-dir", str(user),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"into {user.resolve() / 'qemu-an386' / 'validations.csv'}" in err
    assert tree_digest(shipped) == before  # the shipped defaults untouched
    rows = (user / "qemu-an386" / "validations.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 and "validation:s/trial-7" in rows[1]
    # the cost models read the user's records on top of the shipped ones
    monkeypatch.setenv("MICROTL_CALIBRATION_DIR", str(user))
    clear_firmware_cache()
    cal = load_firmware_calibration("qemu-an386")
    assert "validations.csv" in cal.files and "campaign.csv" in cal.files
    # a user file of the shipped file's name replaces it
    (user / "qemu-an386" / "campaign.csv").write_text((shipped / "campaign.csv").read_text())
    clear_firmware_cache()
    assert load_board("qemu-an386").calibration_dirs[-1] == (user / "qemu-an386").resolve()
    assert load_firmware_calibration("qemu-an386").files == cal.files
    clear_firmware_cache()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project installed non-editable (pip install . --no-deps, no build isolation: no download) into a fresh
    virtualenv that sees the shared packages through a .pth line; the sources copied first so the work tree gets
    no build files."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        else:
            shutil.copy(item, src / name)
    venv = root / "venv"
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=300)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    shared = Path(optuna.__file__).parent.parent  # torch, optuna, pip, setuptools, ... of the shared env
    (site / "shared-env.pth").write_text(f"{shared}\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-cache-dir", "-q", str(src)], capture_output=True, text=True, timeout=900, env=env,
                          cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import cost_models, dse; print(cost_models.__file__);"
                            "print(dse.__file__)"], capture_output=True, text=True, cwd=root, env=env)
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where  # the installed copy, not ours
    return venv, site


def test_non_editable_install_calibrate_add_and_rescore(installed, tmp_path):
    venv, site = installed
    # a small finished study (run here, with the shared cache), as a user's runs/ folder
    study_file = tmp_path / "small.toml"
    study_file.write_text((REPO / "studies" / "tiny.toml").read_text().replace("trials = 6", "trials = 3"))
    with model_cache_at(tmp_path / "cache"):
        run_study(load_study_file(study_file), tmp_path / "study", progress=False)
    before = {name: tree_digest(site / name) for name in PACKAGES}
    user = tmp_path / "user-data"
    env = {**os.environ, "MICROTL_CALIBRATION_DIR": str(user), "OMP_NUM_THREADS": "1"}
    vdir = validation_records(tmp_path / "validations")
    dse = str(venv / "bin" / "dse")
    add = subprocess.run([dse, "calibrate", "--board", "qemu-an386", "--add", str(vdir)], capture_output=True,
                         text=True, timeout=600, env=env, cwd=tmp_path)
    assert add.returncode == 0, add.stderr
    assert "Traceback" not in add.stderr and f"into {user / 'qemu-an386' / 'validations.csv'}" in add.stderr
    assert (user / "qemu-an386" / "validations.csv").is_file()
    rescore = subprocess.run([dse, "rescore", str(tmp_path / "study")], capture_output=True, text=True, timeout=900,
                             env=env, cwd=tmp_path)
    assert rescore.returncode == 0, rescore.stderr
    assert "Traceback" not in rescore.stderr
    assert "validations.csv" in rescore.stdout + rescore.stderr  # priced with the user's records on top
    assert {name: tree_digest(site / name) for name in PACKAGES} == before  # site-packages untouched
    assert not (site / "cost_models" / "calibration" / "qemu-an386" / "validations.csv").exists()
