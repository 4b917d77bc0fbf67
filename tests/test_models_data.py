"""Task data: splits, the balanced sample draw, and the npz loader's error messages."""
import numpy as np
import pytest

from vocabulary.configuration import Configuration, validation_count
from models.data import DataError, draw_samples, load_task, max_balanced


@pytest.fixture(scope="module")
def digits():
    return load_task("digits")


def test_digits_splits(digits):
    assert digits.input_shape == (8, 8, 1)
    assert len(digits.target_pool) == 355 and len(digits.target_test) == 178
    assert len(digits.source_train) + len(digits.source_test) == 1264
    assert abs(len(digits.source_test) / 1264 - 0.2) < 0.01
    for split in (digits.source_train, digits.source_test, digits.target_pool, digits.target_test):
        assert split.x.dtype == np.float32 and split.x.min() >= 0 and split.x.max() <= 1
        assert split.y.dtype == np.int64
    assert set(np.unique(digits.source_train.y)) == set(range(7))
    assert set(np.unique(digits.target_pool.y)) == {0, 1, 2}
    # stratified: every class is about a third of the target test set
    assert np.bincount(digits.target_test.y).min() >= 55
    # target labels are remapped in the order of Task.target_labels: class 0 = digit 7
    from sklearn.datasets import load_digits
    raw = load_digits()
    sevens = (raw.images[raw.target == 7] / 16).astype(np.float32)
    first = digits.target_pool.x[digits.target_pool.y == 0][0, :, :, 0]
    assert any(np.array_equal(first, s) for s in sevens)


def test_digits_deterministic(digits):
    again = load_task("digits")
    assert again.content_hash == digits.content_hash
    assert np.array_equal(again.target_test.x, digits.target_test.x)


def test_draw_balanced_disjoint_deterministic(digits):
    y = digits.target_pool.y
    for n in (1, 2, 10, 90, 100, 300, max_balanced(y)):
        train, val = draw_samples(y, n, seed=5)
        assert len(train) + len(val) == n
        assert len(val) == validation_count(n) == Configuration("digits", "digits_cnn", "pool2", 0, n, 1).val_samples
        assert not set(train) & set(val)
        counts = np.bincount(y[np.concatenate([train, val])], minlength=3)
        assert counts.max() - counts.min() <= 1, (n, counts)
        again = draw_samples(y, n, seed=5)
        assert np.array_equal(again[0], train) and np.array_equal(again[1], val)
    train, val = draw_samples(y, 90, seed=5)
    assert (len(train), len(val)) == (81, 9)
    assert np.bincount(y[val], minlength=3).tolist() == [3, 3, 3]  # stratified validation part
    assert not np.array_equal(draw_samples(y, 90, seed=6)[0], train)


def test_draw_too_many(digits):
    y = digits.target_pool.y
    limit = max_balanced(y)
    assert limit == 3 * np.bincount(y).min() == 348
    with pytest.raises(ValueError, match=f"maximum is {limit}"):
        draw_samples(y, limit + 1, seed=0)


def test_npz_roundtrip(tmp_path, digits):
    from sklearn.datasets import load_digits
    raw = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, x=(raw.images[..., None] / 16).astype(np.float32), y=raw.target)
    data = load_task("npz", path, source_labels=range(7), target_labels=(7, 8, 9))
    assert data.input_shape == (8, 8, 1)
    assert np.array_equal(data.target_test.x, digits.target_test.x)
    assert data.task.target_labels == (7, 8, 9) and data.task.input_shape == (8, 8, 1)


def _one_line_naming(exc, *words):
    message = str(exc.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_npz_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "data.npz"
    with pytest.raises(DataError) as exc:
        load_task("npz", path, source_labels=(0,), target_labels=(1,))
    _one_line_naming(exc, str(path), "x", "y")


def test_npz_missing_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=np.zeros((10, 4), np.float32), labels=np.zeros(10, int))
    with pytest.raises(DataError) as exc:
        load_task("npz", path, source_labels=(0,), target_labels=(1,))
    _one_line_naming(exc, str(path), "'y'")


def test_npz_unreadable_and_malformed(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all\n")
    with pytest.raises(DataError) as exc:
        load_task("npz", garbage, source_labels=(0,), target_labels=(1,))
    _one_line_naming(exc, str(garbage))
    mismatched = tmp_path / "mismatch.npz"
    np.savez(mismatched, x=np.zeros((10, 4), np.float32), y=np.zeros(9, int))
    with pytest.raises(DataError) as exc:
        load_task("npz", mismatched, source_labels=(0,), target_labels=(1,))
    _one_line_naming(exc, str(mismatched))
    float_labels = tmp_path / "float_labels.npz"
    np.savez(float_labels, x=np.zeros((10, 4), np.float32), y=np.zeros(10))
    with pytest.raises(DataError) as exc:
        load_task("npz", float_labels, source_labels=(0,), target_labels=(1,))
    _one_line_naming(exc, str(float_labels), "y")


def test_labels_must_exist_and_be_distinct(tmp_path):
    path = tmp_path / "few.npz"
    np.savez(path, x=np.zeros((20, 4), np.float32), y=np.array([0] * 10 + [1] * 10))
    with pytest.raises(DataError) as exc:
        load_task("npz", path, source_labels=(0,), target_labels=(2,))
    _one_line_naming(exc, str(path), "label 2")
    with pytest.raises(ValueError, match="distinct"):
        load_task("npz", path, source_labels=(0, 1), target_labels=(1,))
    custom = load_task("digits", None, (0, 1, 2), (3, 4))
    assert custom.source_classes == 3 and custom.target_classes == 2
