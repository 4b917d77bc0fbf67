"""The shared core: the words every room uses, defined once and depending on nothing but the standard library.

- `configuration`: one point of the design space (`Configuration`), each field's domain (`DOMAINS`: bounds,
  choices, what a study may vary, which mode takes it) and its rules;
- `phases`: the phases of one adaptation (collection, training, evaluation);
- `run_records`: the calibration run record's schema (what firmware writes and cost_models fits on);
- `validation_record`: the validation record's schema (what firmware measured against what the study predicted,
  with its provenance).

models, cost_models, firmware and dse all import from here; this package imports none of them
(tests/test_architecture.py checks it).
"""
from .configuration import DOMAINS, MODES, STREAMING_FIXED, Configuration, FieldDomain, validation_count
from .phases import DEVICE_PHASES, PHASES

__all__ = ["DEVICE_PHASES", "DOMAINS", "MODES", "PHASES", "STREAMING_FIXED", "Configuration", "FieldDomain",
           "validation_count"]
