"""The recurrent campaign grid (firmware/calibrate_rnn.py): every point is a valid configuration whose workload the
cost models can count, keys are unique, every cut of both recurrent models is covered, and the generated UCI HAR
directory reads through the real loader (file layout, 9 signals x 128 steps, labels 1-6)."""
import dataclasses

from vocabulary.run_records import run_key
from cost_models.workload import workload_from_config
from firmware.calibrate import campaign_data, campaign_source, unmeasured
from firmware.calibrate_rnn import RnnGrid, generated_uci_har
from models.datasets import uci_har
from models.tasks import get_task
from models.zoo import get_model


def test_grid_covers_every_recurrent_cut():
    configs = RnnGrid().configurations()
    keys = [run_key(c, get_task(c.task).classes, 0) for c in configs]
    assert len(set(keys)) == len(keys)
    for model in ("har_rnn", "motions_rnn"):
        assert {c.cut for c in configs if c.model == model} == set(get_model(model).cut_points())
    for c in configs:
        w = workload_from_config(c)
        assert c.patience == c.epochs and w.train_samples >= c.batch  # epochs run known; full first batch
    assert {c.epochs for c in configs if c.model == "motions_rnn"} >= {2, 10, 20}
    # the direct-update trainer (momentum 0, batch 1) of both models, restore_best on and off, hidden 0 and > 0
    for model in ("har_rnn", "motions_rnn"):
        direct = [c for c in configs if c.model == model and c.batch == 1 and not c.momentum]
        assert {c.restore_best for c in direct} == {True, False} and {c.hidden > 0 for c in direct} == {True, False}


def test_campaign_skips_measured_keys_up_to_the_test_count():
    on = next(c for c in RnnGrid().trainer_configurations() if c.restore_best)
    off = dataclasses.replace(on, restore_best=False)
    classes = get_task(on.task).classes
    # the test count is known after generation only; restore_best off (key suffix /last) is another point
    assert unmeasured([on, off], {run_key(on, classes, 20)}) == [off]
    assert unmeasured([on, off], {run_key(off, classes, 7)}) == [on]
    assert unmeasured([on, off], {run_key(on, classes, 3), run_key(off, classes, 3)}) == []


def test_generated_uci_har_reads_through_the_loader(tmp_path):
    base = generated_uci_har(tmp_path, train_per_class=4, test_per_class=3)
    (x_train, y_train), (x_test, y_test) = uci_har.load(base)
    assert x_train.shape == (24, 128, 9) and x_test.shape == (18, 128, 9)
    assert sorted(set(y_train.tolist())) == [1, 2, 3, 4, 5, 6]
    assert generated_uci_har(tmp_path, train_per_class=4, test_per_class=3) == base  # reused, not rewritten
    assert campaign_data("digits", tmp_path) is None and campaign_source("har3b") != "campaign"
