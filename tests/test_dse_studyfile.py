"""Study files: what a valid one means, and how each kind of mistake is reported (one line: file, key, value;
exit 2; nothing written)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from dse.cli import main
from dse.errors import StudyFileError
from dse.study.space import Choice, Fixed, Range
from dse.study.file import differences, load_study_file, parse_study

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_quickstart_reads_like_its_method_section():
    spec = load_study_file(REPO / "studies" / "quickstart.toml")
    assert (spec.name, spec.sampler, spec.seed) == ("quickstart", "nsga2", 0)
    assert spec.trials >= 60 and spec.repeats >= 3
    assert (spec.task.name, spec.model, spec.board) == ("digits", "digits_cnn", "nrf52840dk")
    space = spec.space.params
    assert space["cut"] == Choice(("conv1", "conv2", "pool2", "fc1"))
    assert space["hidden"] == Choice((0, 8, 16, 32))
    assert space["samples"] == Range(20, 300, 10, False, integer=True)
    assert space["lr"] == Range(0.003, 0.1, None, True)
    assert space["momentum"] == Fixed(0.9)
    assert [(o.name, o.direction) for o in spec.objectives] == [
        ("accuracy", "maximize"), ("energy", "minimize"), ("ram", "minimize")]
    keys = [c.key for c in spec.constraints]
    assert keys == ["board_ram", "board_flash", "ram_kb"]
    assert spec.board_limits.ram_bytes == 256 * 1024


def test_constraint_values_are_relative_violations():
    spec = parse_study(TINY, "tiny.toml", check_environment=False)
    (ram,) = spec.user_constraints
    assert ram.key == "ram_kb" and ram.limit == 64
    assert ram.violation(32 * 1024) == pytest.approx(-0.5)
    assert ram.violation(96 * 1024) == pytest.approx(0.5)
    acc = parse_study(TINY + "accuracy_min = 0.8\n", "tiny.toml", check_environment=False).user_constraints[1]
    assert acc.violation(0.9) < 0 < acc.violation(0.7)


def test_hash_ignores_trials_and_comments_only():
    a = parse_study(TINY, "a.toml", check_environment=False)
    b = parse_study(edit(TINY, "trials = 6", "trials = 60  # more"), "b.toml", check_environment=False)
    c = parse_study(edit(TINY, "repeats = 2", "repeats = 3"), "c.toml", check_environment=False)
    assert a.hash == b.hash != c.hash
    assert differences(a.raw, c.raw) == ["study.repeats"]


def test_grid_sampler_enumerates_a_finite_space():
    text = edit(edit(TINY, 'sampler = "random"', 'sampler = "grid"'), "lr = { low = 0.01, high = 0.05 }",
                "lr = [0.01, 0.05]")
    spec = parse_study(text, "g.toml", check_environment=False)
    assert spec.space.grid() == {"cut": ["conv2", "pool2"], "hidden": [0, 8], "samples": [20, 40, 60],
                                 "lr": [0.01, 0.05]}
    assert spec.space.grid_size() == 24


def test_error_names_file_key_and_value():
    with pytest.raises(StudyFileError) as exc:
        parse_study(edit(TINY, "samples = { low = 20, high = 60, step = 20 }", "samples = { low = 300, high = 20 }"),
                    "studies/x.toml", check_environment=False)
    assert str(exc.value) == "studies/x.toml: space.samples: range low 300 > high 20"


BARE_BOARD = "boards/bare.toml"

CASES = {
    # name: (replace old, by new, key, value shown in the message)
    "unknown key": ("epochs = 5", "epochs = 5\ncutt = [\"conv1\"]", "space.cutt", '["conv1"]'),
    "unknown key in a range": ("step = 20 }", "stepp = 20 }", "space.samples.stepp", "20"),
    "unknown section": ("[board]", "[bord]\nname = 1\n[board]", "bord", "name = 1"),
    "unknown model": ('name = "digits_cnn"', 'name = "resnet18"', "model.name", "resnet18"),
    "unknown cut point": ('cut = ["conv2", "pool2"]', 'cut = ["conv2", "conv9"]', "space.cut", "conv9"),
    "inverted range": ("samples = { low = 20, high = 60, step = 20 }", "samples = { low = 300, high = 20 }",
                       "space.samples", "range low 300 > high 20"),
    "empty choices": ("hidden = [0, 8]", "hidden = []", "space.hidden", "empty list"),
    "wrong type": ("trials = 6", 'trials = "six"', "study.trials", '"six"'),
    "float for an integer": ("hidden = [0, 8]", "hidden = [0, 8.5]", "space.hidden", "8.5"),
    "unknown task": ('name = "digits"', 'name = "mnist"', "task.name", "mnist"),
    "unknown board": ('name = "nrf52840dk"', 'name = "esp32"', "board.name", "esp32"),
    "board without calibration": ('name = "nrf52840dk"', f'name = "{BARE_BOARD}"', "board.name", "bare.toml"),
    "missing data file": ('[task]\nname = "digits"',
                          '[task]\nname = "npz"\ndata = "missing.npz"\nsource_labels = [0, 1]\ntarget_labels = [2]',
                          "task.data", "missing.npz"),
    "grid needs a finite space": ('sampler = "random"', 'sampler = "grid"', "space.lr", "low = 0.01"),
    "minimized accuracy": ('accuracy = "maximize"', 'accuracy = "minimize"', "objectives.accuracy", '"minimize"'),
    "more samples than the data holds": ("high = 60, step = 20", "high = 6000, step = 20", "space.samples", "6000"),
    "log range from zero": ("lr = { low = 0.01, high = 0.05 }", "lr = { low = 0.0, high = 0.05, log = true }",
                            "space.lr", "0.0"),
    "unknown constraint": ("ram_kb = 64", "ram_mb = 1", "constraints.ram_mb", "1"),
    "restore_best not a bool": ("epochs = 5", 'epochs = 5\nrestore_best = "yes"', "space.restore_best", '"yes"'),
    "restore_best choices not bools": ("epochs = 5", "epochs = 5\nrestore_best = [true, 0]", "space.restore_best",
                                       "0"),
    "restore_best range": ("epochs = 5", "epochs = 5\nrestore_best = { low = 0, high = 1 }", "space.restore_best",
                           "low"),
    "momentum not a number": ("epochs = 5", 'epochs = 5\nmomentum = "0.9"', "space.momentum", '"0.9"'),
    "momentum choices not numbers": ("epochs = 5", "epochs = 5\nmomentum = [0.9, true]", "space.momentum", "true"),
}


def test_restore_best_is_a_design_variable():
    """restore_best = [true, false] varies (a categorical parameter of the study) and reaches the configuration."""
    text = edit(edit(TINY, 'sampler = "random"', 'sampler = "grid"'), "lr = { low = 0.01, high = 0.05 }",
                "lr = 0.01\nrestore_best = [true, false]")
    spec = parse_study(text, "r.toml", check_environment=False)
    assert spec.space.grid()["restore_best"] == [True, False]
    assert "restore_best" in spec.space.varying()
    fixed = parse_study(edit(TINY, "epochs = 5", "epochs = 5\nrestore_best = false"), "f.toml",
                        check_environment=False)
    assert fixed.space.first()["restore_best"] is False


@pytest.mark.parametrize("case", list(CASES))
def test_bad_study_file_exits_2_with_one_line_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    old, new, key, value = CASES[case]
    board = tmp_path / BARE_BOARD  # a valid board file whose calibration records do not exist
    board.parent.mkdir()
    board.write_text(edit((REPO / "cost_models" / "boards" / "nrf52840dk.toml").read_text(),
                          'name = "nrf52840dk"', 'name = "bare"'))
    study = tmp_path / "bad.toml"
    study.write_text(edit(TINY, old, new))
    monkeypatch.chdir(tmp_path)
    code = main(["run", "bad.toml", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"dse: error: bad.toml: {key}: "), line
    assert value in line.removeprefix(f"dse: error: bad.toml: {key}: "), line
    assert not (tmp_path / "runs").exists()


def test_missing_and_malformed_study_files(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert re.fullmatch(r"dse: error: .*nope\.toml: no such study file\n", capsys.readouterr().err)
    (tmp_path / "bad.toml").write_text("[study\nname = 1")
    assert main(["run", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "out")]) == 2
    assert "bad.toml: not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_malformed_npz_is_a_study_file_error(tmp_path):
    (tmp_path / "data.npz").write_bytes(b"not a zip")
    text = edit(TINY, '[task]\nname = "digits"',
                '[task]\nname = "npz"\ndata = "data.npz"\nsource_labels = [0, 1]\ntarget_labels = [2]')
    (tmp_path / "s.toml").write_text(text)
    with pytest.raises(StudyFileError, match=r"s\.toml: task\.data: .*data\.npz"):
        load_study_file(tmp_path / "s.toml")


def test_npz_study_with_labels_is_priced_with_its_class_count(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=(digits.images / 16.0)[..., None].astype(np.float32), y=digits.target)
    text = edit(TINY, '[task]\nname = "digits"', '[task]\nname = "npz"\ndata = "digits.npz"\n'
                                                 "source_labels = [0, 1, 2, 3, 4, 5, 6]\ntarget_labels = [7, 9]")
    (tmp_path / "s.toml").write_text(text)
    spec = load_study_file(tmp_path / "s.toml")
    assert spec.task.data == tmp_path / "digits.npz" and spec.task.classes == 2
    assert spec.board_limits is not None
    shutil.rmtree(tmp_path)


def _truncated_tar_gz(path: Path) -> None:
    import gzip
    import io
    import tarfile
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        blob = bytes(range(256)) * 64
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    packed = gzip.compress(buffer.getvalue())
    path.write_bytes(packed[: len(packed) // 2])


def _truncated_zip(path: Path) -> None:
    import zipfile
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("UCI HAR Dataset/train/y_train.txt", "1\n" * 500)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


PAPER_TASKS = [
    ("cifar3", "cifar_cnn", '["conv2", "pool2"]', "cifar-10-python.tar.gz", _truncated_tar_gz,
     "https://www.cs.toronto.edu/~kriz/cifar.html", "MICROTL_CIFAR10"),
    ("har3b", "har_rnn", '["conv1", "lstm1"]', "UCI HAR Dataset.zip", _truncated_zip,
     "https://archive.ics.uci.edu/dataset/240", "MICROTL_UCI_HAR"),
]


@pytest.mark.parametrize("task, model, cut, file, damage, url, env", PAPER_TASKS)
def test_paper_task_with_missing_or_damaged_data_exits_2_with_one_line(task, model, cut, file, damage, url, env,
                                                                      tmp_path, capsys, monkeypatch):
    text = edit(TINY, '[task]\nname = "digits"', f'[task]\nname = "{task}"\ndata = "data/{file}"')
    text = edit(edit(text, 'name = "digits_cnn"', f'name = "{model}"'), 'cut = ["conv2", "pool2"]', f"cut = {cut}")
    (tmp_path / "s.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    for present in (False, True):
        if present:
            (tmp_path / "data").mkdir()
            damage(tmp_path / "data" / file)
        code = main(["run", "s.toml", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("dse: error: s.toml: task.data: "), lines[0]
        assert file in lines[0], lines[0]
        if present:  # the reader's message: which file, what is wrong, where it is published
            assert url in lines[0], lines[0]
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("task, model, cut, file, damage, url, env", PAPER_TASKS)
def test_paper_task_without_data_key_uses_its_environment_variable(task, model, cut, file, damage, url, env,
                                                                   tmp_path, capsys, monkeypatch):
    """The paper's tasks fix their labels; their data may come from an environment variable instead of task.data."""
    text = edit(TINY, '[task]\nname = "digits"', f'[task]\nname = "{task}"')
    text = edit(edit(text, 'name = "digits_cnn"', f'name = "{model}"'), 'cut = ["conv2", "pool2"]', f"cut = {cut}")
    (tmp_path / "s.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    damage(tmp_path / file)
    monkeypatch.setenv(env, str(tmp_path / file))
    code = main(["run", "s.toml", "--quiet"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1, lines
    assert file in lines[0] and url in lines[0], lines[0]  # the variable's file was read and found damaged
    assert not (tmp_path / "runs").exists()
