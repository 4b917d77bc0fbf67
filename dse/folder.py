"""The study folder: where a study's storage, copy of its study file and reports live.

`study.json` points at the storage and records which study file the folder belongs to, so that `dse report DIR`
finds the study and `dse run` refuses to mix a changed study file into an existing study.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from . import atomic
from .errors import StudyFolderError
from .paths import check_input_folder, check_output_folder
from .studyfile import BoardLimits, StudySpec, differences, parse_study, sqlite_file

POINTER = "study.json"
DATABASE = "study.db"
SPEC_COPY = "study.toml"

# study user attrs holding the study file
ATTR_TOML, ATTR_HASH, ATTR_PATH, ATTR_BOARD = "spec_toml", "spec_hash", "spec_path", "board_limits"


@dataclass(frozen=True)
class StudyFolder:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def storage_url(self, storage: str | None) -> str:
        return storage or f"sqlite:///{(self.path / DATABASE).resolve()}"

    def read_pointer(self) -> dict | None:
        file = self.path / POINTER
        if not file.is_file():
            return None
        try:
            pointer = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudyFolderError(f"{file}: unreadable ({' '.join(str(exc).split())[:200]})") from None
        if not isinstance(pointer, dict) or not isinstance(pointer.get("study_name"), str):
            raise StudyFolderError(f"{file}: not a study pointer (no study_name)")
        if not isinstance(pointer.get("storage"), (str, type(None))):
            raise StudyFolderError(f"{file}: storage: must be a URL string, got {pointer.get('storage')!r:.80}")
        return pointer

    def check(self, spec: StudySpec) -> None:
        """Refuse, before writing anything, a folder that holds another study or one from a changed study file."""
        check_output_folder(self.path, "study folder")
        pointer = self.read_pointer()
        if pointer is None:
            return
        if pointer.get("study_name") != spec.name:
            raise StudyFolderError(f"{self.path} holds study {pointer.get('study_name')!r}, not {spec.name!r}; "
                                   "use another --out")
        if pointer.get("spec_hash") != spec.hash:
            _changed(self.path, spec.name, pointer.get("spec_toml", ""), spec)

    def create(self, spec: StudySpec) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        file = sqlite_file(self.storage_url(spec.storage))
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
        pointer = {"study_name": spec.name, "storage": spec.storage, "spec_hash": spec.hash,
                   "spec_path": str(spec.path), "spec_toml": spec.text}
        atomic.write_text(self.path / POINTER, json.dumps(pointer, indent=2) + "\n")
        atomic.write_text(self.path / SPEC_COPY, spec.text)

    def has_database(self, spec: StudySpec) -> bool:
        """Whether the storage may already hold the study (opening an SQLite URL would create its file)."""
        file = sqlite_file(self.storage_url(spec.storage))
        return file.is_file() if file is not None else True

    def load(self) -> tuple[optuna.Study, StudySpec]:
        """The study and its spec, from storage alone (for reports)."""
        check_input_folder(self.path)
        pointer = self.read_pointer()
        if pointer is None:
            raise StudyFolderError(f"{self.path}: not a study folder (no {POINTER}; run `dse run` first)")
        url = self.storage_url(pointer.get("storage"))
        file = sqlite_file(url)
        if file is not None and not file.is_file():
            raise StudyFolderError(f"{self.path}: the study's storage {file} is missing")
        try:
            from .storage import open_storage

            study = optuna.load_study(study_name=pointer["study_name"], storage=open_storage(url, existing=True))
        except KeyError:
            raise StudyFolderError(f"{self.path}: storage {url} holds no study {pointer['study_name']!r}") from None
        text = study.user_attrs.get(ATTR_TOML, pointer.get("spec_toml", ""))
        spec = parse_study(text, study.user_attrs.get(ATTR_PATH, pointer.get("spec_path", "study.toml")),
                           check_environment=False)
        if ATTR_BOARD in study.user_attrs:
            spec = replace(spec, board_limits=BoardLimits(**study.user_attrs[ATTR_BOARD]))
        return study, spec


def find_study(storage: BaseStorage, name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


def check_stored_spec(storage: BaseStorage, study_id: int, spec: StudySpec, where: str) -> None:
    """The stored study file must equal this one in everything but study.trials."""
    attrs = storage.get_study_user_attrs(study_id)
    if ATTR_HASH in attrs and attrs[ATTR_HASH] != spec.hash:
        _changed(where, spec.name, attrs.get(ATTR_TOML, ""), spec)


def store_spec(study: optuna.Study, spec: StudySpec) -> None:
    if ATTR_HASH not in study.user_attrs:
        study.set_user_attr(ATTR_TOML, spec.text)
        study.set_user_attr(ATTR_HASH, spec.hash)
        study.set_user_attr(ATTR_PATH, str(spec.path))
    if spec.board_limits and ATTR_BOARD not in study.user_attrs:
        study.set_user_attr(ATTR_BOARD, asdict(spec.board_limits))


def _changed(where, name: str, old_text: str, spec: StudySpec):
    try:
        keys = differences(tomllib.loads(old_text), spec.raw)
    except tomllib.TOMLDecodeError:
        keys = []
    what = f" in {', '.join(keys)}" if keys else ""
    raise StudyFolderError(f"{where}: study {name!r} was started from a different study file (it differs{what}; "
                           "only study.trials may change); use another --out or restore the study file")
