"""What a study's storage holds of a trial: the names of its user attributes (written by dse.search.trial, read by
the reports, `dse validate` and `dse rescore`) and the states of a finished trial."""
from __future__ import annotations

from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
ATTR_FAIL = "fail_reason"
ATTR_CONFIG, ATTR_ACCURACY, ATTR_PREDICTED = "config", "accuracy", "predicted"
ATTR_NOTES, ATTR_PHASES = "prediction_notes", "phases_included"
ATTR_LIFETIME = "lifetime"  # cost_models.lifetime.LifetimeComparison.to_dict(), with a [deployment]
LEGACY_CONSTRAINTS = "constraints"  # trial system attr: the constraint values as a list, in the study file's order
