"""The study folder: where a study's storage, copy of its study file and reports live.

`study.json` points at the storage and records which study file the folder belongs to, so that `dse report DIR`
finds the study and `dse run` refuses to mix a changed study file into an existing study. Storage URLs and the
study file are written with their passwords masked (dse.redact). In the storage, the study carries only its spec
hash, path and board limits as user attributes (short: `optuna studies` prints them); the full study file goes
into a study system attribute, which the optuna CLI and optuna-dashboard do not print.
"""
from __future__ import annotations

import json
import tomllib
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import optuna
from optuna.storages import BaseStorage
from sqlalchemy.exc import SQLAlchemyError

from dse import atomic
from dse.errors import StudyFolderError
from dse.paths import check_input_folder, check_output_folder
from dse.redact import ENV_URL, MASK, mask, restore
from dse.study.file import BoardLimits, StudySpec, differences, parse_study, sqlite_file
from dse.study.storage import StorageError, open_storage

POINTER = "study.json"
DATABASE = "study.db"
SPEC_COPY = "study.toml"

# study user attrs holding the study file
ATTR_TOML, ATTR_HASH, ATTR_PATH, ATTR_BOARD = "spec_toml", "spec_hash", "spec_path", "board_limits"
MASKED = f":{MASK}@"  # a stored URL whose password was masked
SYSTEM_TOML = "dse:spec_toml"  # study system attr: the study file (masked); older studies: user attr ATTR_TOML
MOVED = f"moved to system attribute {SYSTEM_TOML}"


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
        pointer = {"study_name": spec.name, "storage": mask(spec.storage) if spec.storage else None,
                   "spec_hash": spec.hash, "spec_path": str(spec.path), "spec_toml": mask(spec.text)}
        atomic.write_text(self.path / POINTER, json.dumps(pointer, indent=2) + "\n")
        atomic.write_text(self.path / SPEC_COPY, mask(spec.text))

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
        url = self.storage_url(restore(pointer["storage"]) if pointer.get("storage") else None)
        file = sqlite_file(url)
        if file is not None and not file.is_file():
            raise StudyFolderError(f"{self.path}: the study's storage {file} is missing")
        stored = str(pointer.get("storage") or url)
        storage = _open(url, self.path, shown=stored if MASKED in stored else mask(url), existing=True)
        try:
            study = optuna.load_study(study_name=pointer["study_name"], storage=storage)
        except KeyError:
            raise StudyFolderError(f"{self.path}: storage {mask(url)} holds no study "
                                   f"{pointer['study_name']!r}") from None
        text = stored_text(storage.get_study_system_attrs(study._study_id), study.user_attrs) or \
            pointer.get("spec_toml", "")
        spec = parse_study(text, study.user_attrs.get(ATTR_PATH, pointer.get("spec_path", "study.toml")),
                           check_environment=False)
        if ATTR_BOARD in study.user_attrs:
            spec = replace(spec, board_limits=BoardLimits(**study.user_attrs[ATTR_BOARD]))
        return study, spec


def _open(url: str, folder: Path, shown: str, existing: bool = False) -> BaseStorage:
    """The folder's storage; a server that refuses (no password: the folder keeps it masked) is one line."""

    try:
        return open_storage(url, existing=existing)
    except (SQLAlchemyError, ImportError, StorageError) as exc:
        hint = (f" (the folder keeps the URL without its password: give it in {ENV_URL} or, for PostgreSQL, "
                "PGPASSWORD or ~/.pgpass)") if MASKED in shown else ""
        detail = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        raise StudyFolderError(mask(f"{folder}: cannot open its storage {shown}: {type(exc).__name__}: "
                                    f"{detail}{hint}")) from None


def find_study(storage: BaseStorage, name: str) -> int | None:
    try:
        return storage.get_study_id_from_name(name)
    except KeyError:
        return None


def check_stored_spec(storage: BaseStorage, study_id: int, spec: StudySpec, where: str) -> None:
    """The stored study file must equal this one in everything but study.trials."""
    attrs = storage.get_study_user_attrs(study_id)
    if ATTR_HASH in attrs and attrs[ATTR_HASH] != spec.hash:
        _changed(mask(str(where)), spec.name, stored_text(storage.get_study_system_attrs(study_id), attrs), spec)


def stored_text(system_attrs: dict, user_attrs: dict) -> str:
    """The study file stored with a study (studies stored before SYSTEM_TOML keep it in a user attribute)."""
    old = user_attrs.get(ATTR_TOML, "")
    return system_attrs.get(SYSTEM_TOML) or ("" if old == MOVED else old)


def store_spec(study: optuna.Study, spec: StudySpec) -> None:
    """The spec's hash, path and board limits (user attributes), the study file (masked, a system attribute),
    and the objectives' names (what optuna-dashboard and `study.metric_names` show)."""
    if ATTR_HASH not in study.user_attrs:
        study.set_user_attr(ATTR_HASH, spec.hash)
        study.set_user_attr(ATTR_PATH, str(spec.path))
    old = study.user_attrs.get(ATTR_TOML)
    if old is not None and old != MOVED:  # an older study: its study file leaves `optuna studies`' table
        study._storage.set_study_system_attr(study._study_id, SYSTEM_TOML, mask(old))
        study.set_user_attr(ATTR_TOML, MOVED)  # Optuna cannot delete a study attribute
    if SYSTEM_TOML not in study._storage.get_study_system_attrs(study._study_id):
        study._storage.set_study_system_attr(study._study_id, SYSTEM_TOML, mask(spec.text))
    if spec.board_limits and ATTR_BOARD not in study.user_attrs:
        study.set_user_attr(ATTR_BOARD, asdict(spec.board_limits))
    names = [o.name for o in spec.objectives]
    if study.metric_names != names:
        with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and what optuna-dashboard reads
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


def _changed(where, name: str, old_text: str, spec: StudySpec):
    try:
        keys = differences(tomllib.loads(old_text), spec.raw)
    except tomllib.TOMLDecodeError:
        keys = []
    what = f" in {', '.join(keys)}" if keys else ""
    raise StudyFolderError(f"{where}: study {name!r} was started from a different study file (it differs{what}; "
                           "only study.trials may change); use another --out or restore the study file")
