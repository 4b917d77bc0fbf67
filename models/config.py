"""Moved to `vocabulary.configuration` (the shared core); this re-export keeps `from models.config import ...`
working until every branch imports from `vocabulary`. New code imports `vocabulary`."""
from vocabulary.configuration import MODES, STREAMING_FIXED, Configuration, validation_count

__all__ = ["MODES", "STREAMING_FIXED", "Configuration", "validation_count"]
