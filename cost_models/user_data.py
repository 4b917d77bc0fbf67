"""The user's calibration folder: where calibration imports and refits are written, never into the package.

The calibrations shipped in cost_models/calibration/<board>/ are defaults (read-only in an installed package).
What a user adds - imported validation records, a resumed campaign, a refitted emulator map - goes to
`<root>/<board>/`, where root is `MICROTL_CALIBRATION_DIR` if set, else the platform's user data folder
(platformdirs: ~/.local/share/microtl-dse/calibration on Linux). The cost models read the user's files on top of the
shipped ones: a user file of the same name replaces the shipped one (a resumed campaign.csv starts as a copy of it),
other user files are added. A board loaded from its own file (not a packaged one) keeps its records beside that file,
which is the user's already.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV = "MICROTL_CALIBRATION_DIR"
APP = "microtl-dse"


def user_root() -> Path:
    given = os.environ.get(ENV, "").strip()
    return Path(given).expanduser() if given else platformdirs.user_data_path(APP) / "calibration"


def layered_files(directories: tuple[Path, ...], pattern: str = "*.csv") -> list[Path]:
    """The files matching `pattern` in `directories`, a later folder's file replacing an earlier one of the same
    name; sorted by name."""
    chosen: dict[str, Path] = {}
    for d in directories:
        if d.is_dir():
            chosen.update({p.name: p for p in d.glob(pattern) if p.is_file()})
    return [chosen[name] for name in sorted(chosen)]


def layered_file(directories: tuple[Path, ...], name: str) -> Path:
    """The last folder's `name` that exists (the user's over the shipped one); the first folder's if none does."""
    for d in reversed(directories):
        if (d / name).is_file():
            return d / name
    return directories[0] / name
