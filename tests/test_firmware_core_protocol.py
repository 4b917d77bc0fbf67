"""The JSON-lines protocol parser, the board registry and the host board's time limit."""
import json
import stat

import pytest

from firmware.boards import FirmwareTimeout, get_board, list_boards
from firmware.boards.base import RunResult
from firmware.protocol import ProtocolError, parse

GOOD = [
    {"event": "hello", "firmware": "microtl-dse", "protocol": 1, "samples": 3, "train": 2, "val": 1, "test": 4,
     "feature": 2},
    {"event": "phase", "phase": "collection", "edge": "begin"},
    {"event": "phase", "phase": "collection", "edge": "end"},
    {"event": "features", "fnv1a": "0x1234abcd", "n": 3, "bytes": 2},
    {"event": "feature", "i": 0, "hex": "0102"},
    {"event": "feature", "i": 1, "hex": "ff80"},
    {"event": "feature", "i": 2, "hex": "7f00"},
    {"event": "phase", "phase": "training", "edge": "begin"},
    {"event": "phase", "phase": "training", "edge": "end"},
    {"event": "train", "epochs_run": 7, "best_epoch": 2},
    {"event": "phase", "phase": "evaluation", "edge": "begin"},
    {"event": "phase", "phase": "evaluation", "edge": "end"},
    {"event": "result", "correct": 3, "test": 4},
    {"event": "cycles", "phase": "collection", "cycles": 100},
    {"event": "cycles", "phase": "training", "cycles": 2000},
    {"event": "cycles", "phase": "evaluation", "cycles": 300},
    {"event": "memory", "stack_bytes": 1200, "heap_bytes": -1},
    {"event": "done", "status": 0},
]


def _text(objs, noise=()):
    return "\n".join([*noise, *(json.dumps(o) for o in objs)]) + "\n"


def test_parse_good_output_with_noise():
    report = parse(_text(GOOD, noise=["boot banner", "[00:00] rtt up"]))
    assert report.features_fnv1a == 0x1234ABCD and (report.epochs_run, report.best_epoch) == (7, 2)
    assert report.accuracy == 0.75 and report.stack_bytes == 1200 and report.heap_bytes is None
    assert report.cycles == {"collection": 100, "training": 2000, "evaluation": 300} and report.host_ns is None
    assert report.noise == ["boot banner", "[00:00] rtt up"]
    assert report.feature_matrix().tolist() == [[1, 2], [-1, -128], [127, 0]]
    assert parse(_text(GOOD), cycles_are_ns=True).host_ns["training"] == 2000


@pytest.mark.parametrize("cut, missing", [(len(GOOD) - 1, "done"), (12, "result"), (9, "train"),
                                          (8, "training end"), (1, "collection begin")])
def test_truncated_output_names_what_is_missing(cut, missing):
    with pytest.raises(ProtocolError) as info:
        parse(_text(GOOD[:cut]))
    assert missing in str(info.value) and "\n" not in str(info.value)


def test_malformed_outputs():
    with pytest.raises(ProtocolError, match="no protocol lines"):
        parse("garbage\n")
    with pytest.raises(ProtocolError, match="first line"):
        parse(_text(GOOD[1:]))
    bad = [dict(o) for o in GOOD]
    bad[3]["fnv1a"] = "zz"
    with pytest.raises(ProtocolError, match="fnv1a"):
        parse(_text(bad))
    with pytest.raises(ProtocolError, match="out of order"):
        parse(_text([GOOD[0], GOOD[2], GOOD[1], *GOOD[3:]]))
    with pytest.raises(ProtocolError, match="second 'hello'"):
        parse(_text(GOOD[:5] + GOOD[:1] + GOOD[5:]))
    truncated_line = _text(GOOD)[:-10]  # the done line cut in the middle: noise, so done is missing
    with pytest.raises(ProtocolError, match="missing done"):
        parse(truncated_line)


def test_board_registry():
    assert list_boards() == ["host", "qemu-an386", "nrf52840dk"]
    assert get_board("host").target == "host"
    with pytest.raises(ValueError, match="known boards: host, qemu-an386, nrf52840dk"):
        get_board("arduino")


def test_host_board_timeout(tmp_path):
    script = tmp_path / "hang"
    script.write_text("#!/bin/sh\necho '{\"event\":\"hello\"}'\nexec sleep 30\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(FirmwareTimeout, match="firmware did not finish within 0.5 s"):
        get_board("host").run(script, timeout_s=0.5)


def test_run_result_report_on_host_names_ns():
    result = RunResult(lines=[], exit_code=0, stdout_raw=_text(GOOD), instructions={}, cycles=None, wall_s=0.0,
                       board="host", host_ns={"training": 2000})
    report = result.report()
    assert report.host_ns["training"] == 2000 and report.cycles is None


def test_improvements_are_read_when_the_firmware_reports_them():
    """The weight copies of early stopping: reported since the firmware counts them; older output has none."""
    reported = [dict(o, improvements=2) if o["event"] == "train" else o for o in GOOD]
    assert parse(_text(reported)).improvements == 2
    assert parse(_text(GOOD)).improvements is None
    broken = [dict(o, improvements="two") if o["event"] == "train" else o for o in GOOD]
    with pytest.raises(ProtocolError, match="improvements"):
        parse(_text(broken))
