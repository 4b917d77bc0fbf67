"""Each Configuration field declares its domain once (vocabulary.configuration.DOMAINS); the configuration's
checks, the study file's [space] keys, types and checks, the space's mode roles and SGDParams all derive from it.
These tests walk the declaration, so a bound added to it is checked here without a new test."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from dse.errors import StudyFileError
from dse.study.space import applies
from dse.study.file import parse_study
from models.head_params import SGDParams
from vocabulary.configuration import (DOMAINS, STORED_ONLY, STREAMING_FIXED, STREAMING_ONLY, TRAINING, VARIED,
                                      Configuration)

REPO = Path(__file__).resolve().parents[1]
TINY = (REPO / "studies" / "tiny.toml").read_text()
BASE = dict(task="digits", model="digits_cnn", cut="conv2", hidden=8, samples=20, epochs=5)
BOUNDED = [name for name, d in DOMAINS.items() if d.kind in (int, float) and d.rule() is not None]


def outside(name: str, study: bool = False) -> list:
    """The nearest values the declared bounds reject, below and above (of the field's kind)."""
    d = DOMAINS[name]
    low = d.study_at_least if study and d.study_at_least is not None else d.at_least
    values = [d.above if d.above is not None else low - 1] + ([d.below] if d.below is not None else [])
    return [d.kind(v) for v in values]


def inside(name: str) -> object:
    """A value every bound of the field (the study file's too) accepts."""
    d = DOMAINS[name]
    low = d.study_at_least if d.study_at_least is not None else d.at_least
    return d.kind(low if low is not None else d.above + 1)


def with_space(key: str, value: str, study: str = TINY) -> str:
    """A study file (tiny.toml) with [space] `key = value` (replacing the key's line when it has one)."""
    lines = [line for line in study.splitlines() if not line.startswith(f"{key} =")]
    at = lines.index("[space]") + 1
    return "\n".join([*lines[:at], f"{key} = {value}", *lines[at:]]) + "\n"


def space_error(text: str) -> str:
    with pytest.raises(StudyFileError) as info:
        parse_study(text, "study.toml", check_environment=False)
    return str(info.value)


def test_every_field_declares_its_domain_and_the_derived_views_follow():
    assert list(DOMAINS) == [f.name for f in dataclasses.fields(Configuration)]
    assert VARIED == ("cut", "hidden", "samples", "epochs", "batch", "lr", "momentum", "decay", "patience",
                      "restore_best", "mode", "replay")
    assert [n for n, d in DOMAINS.items() if d.required] == ["task", "model", "cut", "hidden", "samples", "epochs"]
    assert STORED_ONLY == ("batch", "epochs", "restore_best", "patience") and STREAMING_ONLY == ("replay",)


@pytest.mark.parametrize("name", BOUNDED)
def test_a_declared_bound_is_checked_by_the_configuration_and_the_study_file(name):
    d = DOMAINS[name]
    for value in outside(name):
        with pytest.raises(ValueError, match=f"^{re.escape(f'configuration: {name} {d.rule()}, got {value!r}')}$"):
            Configuration(**{**BASE, name: value})
    good = inside(name)
    Configuration(**{**BASE, name: good})
    both_modes = with_space("mode", '["stored", "streaming"]') if name in STREAMING_ONLY else TINY
    parse_study(with_space(name, repr(good), both_modes), "study.toml", check_environment=False)
    for value in outside(name, study=True):
        problem = f"space.{name}: {d.rule(study=True)}, got {value!r}"
        assert space_error(with_space(name, repr(value))) == f"study.toml: {problem} (value {value!r})"
        # the same bound on a range's end and in a list of choices
        ends = (value, good) if value < good else (good, value)
        assert problem in space_error(with_space(name, f"{{ low = {ends[0]!r}, high = {ends[1]!r} }}"))
        assert problem in space_error(with_space(name, f"[{good!r}, {value!r}]"))


@pytest.mark.parametrize("name", [name for name, d in DOMAINS.items() if d.kind is float])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_number_field_must_be_finite(name, value):
    """A NaN or infinite lr, momentum or decay is refused by the configuration and by the study file, in the field's
    words (a NaN decay used to pass: `not nan < 0`)."""
    d = DOMAINS[name]
    with pytest.raises(ValueError, match=f"^{re.escape(f'configuration: {name} {d.rule()}, got {value!r}')}$"):
        Configuration(**{**BASE, name: value})
    toml = {"nan": "nan", "inf": "inf", "-inf": "-inf"}[repr(value)]
    assert f"space.{name}: {d.rule(study=True)}, got {toml}" in space_error(with_space(name, toml))


def test_a_new_bound_in_the_declaration_reaches_the_checks(monkeypatch):
    """Declare hidden < 64: the study file and the configuration reject 64 with the declared rule, 32 passes."""
    monkeypatch.setitem(DOMAINS, "hidden", dataclasses.replace(DOMAINS["hidden"], below=64))
    assert space_error(with_space("hidden", "[0, 64]")) == \
        "study.toml: space.hidden: must be in [0, 64), got 64 (value [0, 64])"
    assert "space.hidden: must be in [0, 64), got 64" in space_error(with_space("hidden", "{ low = 8, high = 64 }"))
    spec = parse_study(with_space("hidden", "[0, 32]"), "study.toml", check_environment=False)
    assert spec.space.params["hidden"].grid() == [0, 32]
    with pytest.raises(ValueError, match=re.escape("configuration: hidden must be in [0, 64), got 64")):
        Configuration(**{**BASE, "hidden": 64})


def test_choices_and_kinds_come_from_the_declaration():
    assert space_error(with_space("mode", '"batchwise"')) == \
        'study.toml: space.mode: unknown mode "batchwise"; choose from stored, streaming (value "batchwise")'
    for name in VARIED:
        kind = DOMAINS[name].kind
        wrong = '"x"' if kind is not str else "{ low = 1, high = 2 }"
        assert space_error(with_space(name, wrong)).startswith(f"study.toml: space.{name}: ")
    for name in DOMAINS:  # what another section names is no [space] key
        if name not in VARIED:
            assert space_error(with_space(name, '"x"')).startswith(f"study.toml: space.{name}: unknown key")


def test_the_modes_take_what_the_declaration_says():
    for name in VARIED:
        assert applies(name, "stored") == (name not in STREAMING_ONLY)
        assert applies(name, "streaming") == (name not in STREAMING_FIXED and not DOMAINS[name].stored_only)
    with pytest.raises(ValueError, match=re.escape("replay must be at most samples (20), got 30")):
        Configuration(**{**BASE, **STREAMING_FIXED, "mode": "streaming", "replay": 30})
    with pytest.raises(ValueError, match=re.escape("replay is a streaming setting; mode 'stored' needs replay 0")):
        Configuration(**{**BASE, "replay": 4})
    config = Configuration(**{**BASE, **STREAMING_FIXED, "mode": "streaming", "replay": 20})
    assert config.replay == 20


def test_sgd_params_are_the_configurations_training_fields():
    fields = dataclasses.fields(SGDParams)
    assert tuple(f.name for f in fields) == TRAINING
    for f in fields:
        d = DOMAINS[f.name]
        assert f.type is d.kind and (f.default is dataclasses.MISSING if d.required else f.default == d.default)
    config = Configuration(**{**BASE, "lr": 0.02, "patience": 3, "restore_best": False})
    params = SGDParams.from_config(config)
    assert {name: getattr(params, name) for name in TRAINING} == {name: getattr(config, name) for name in TRAINING}
    assert not params.streaming and SGDParams(epochs=1, mode="streaming").streaming
