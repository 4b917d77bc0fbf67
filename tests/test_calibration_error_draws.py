"""benchmarks/calibration_error.py draws, through its rules, every trainer variant the firmware compiles (issue 11):
the update buffer with and without momentum, the direct per-sample update (momentum 0, batch 1), the best-weights
copy on and off; and its default studies cover every zoo model."""
from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

from cost_models.microtl_dse import model as fm
from cost_models.workload import workload_from_config
from vocabulary.configuration import Configuration
from models.zoo import list_models

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("calibration_error", ROOT / "benchmarks" / "calibration_error.py")
ce = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ce  # its dataclass looks its module up
_spec.loader.exec_module(ce)


def test_rules_reach_every_trainer_variant():
    base = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=40, epochs=10, batch=8)
    variants = set()
    for rule in ce.DRAW_RULES:
        w = workload_from_config(rule.apply(base))
        variants.add((bool(fm.update_buffer(w)), w.momentum > 0, fm.best_copy(w)))
    assert (True, True, True) in variants and (True, True, False) in variants  # restore_best on and off
    assert (True, False, True) in variants  # the update buffer without momentum (batch > 1)
    assert any(not buffered for buffered, _, _ in variants)  # momentum 0, batch 1: the direct update


def test_rule_values_may_follow_the_drawn_configuration():
    base = Configuration(task="digits", model="digits_cnn", cut="pool2", hidden=8, samples=40, epochs=10)
    rule = ce.DrawRule("half the samples", {"patience": lambda c: c.samples // 2, "momentum": 0.0})
    assert (rule.apply(base).patience, rule.apply(base).momentum) == (20, 0.0)


def test_default_studies_cover_every_zoo_model():
    models = {tomllib.loads((ROOT / s).read_text())["model"]["name"] for s in ce.ZOO_STUDIES}
    assert models == {m.name for m in list_models()}
