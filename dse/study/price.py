"""The cost models' price of one configuration, as dse asks for it (a trial's evaluation, the study file's check of
its board and calibration, `dse predict`, `dse validate`)."""
from __future__ import annotations

from cost_models.predict import predict
from vocabulary.configuration import Configuration


def price(config: Configuration, board: str, epochs_run: float | None = None, classes: int | None = None,
          firmware: str | None = None, test_inputs: int = 0):
    """The cost models' prediction for `config`; `classes` is the head's output size when the study knows it
    better than the task registry (a user's npz labels); `firmware` whose firmware a real board prices (the study
    file's board.firmware; None: the board's default)."""
    return predict(config, board=board, epochs_run=epochs_run, classes=classes, firmware=firmware,
                   test_inputs=test_inputs)
