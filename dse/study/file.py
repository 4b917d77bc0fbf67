"""The study file: a TOML page that reads like a paper's method section (what varies, what is measured, what is
constrained), parsed and checked in full into a StudySpec before anything is written.

Every mistake raises StudyFileError with one line naming the file, the dotted key and the value.
"""
from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from cost_models.board import BoardSpecError, load_board
from cost_models.deployment import FIELDS as DEPLOYMENT_FIELDS
from cost_models.deployment import Deployment, DeploymentError, deployment_from_table
from cost_models.lifetime import lifetime_for
from cost_models.paper.calibration import CalibrationError
from cost_models.paper.records import RecordError
from cost_models.predict import FIRMWARES
from dse.errors import StudyFileError
from dse.redact import mask
from dse.study.objectives import LIMITS, MEASURES, Constraint, Objective, board_constraints, user_constraint
from dse.study.price import price
from dse.study.space import Choice, Domain, Fixed, Range, Space
from models.tasks import get_task
from models.zoo import get_model
from vocabulary.configuration import (
    AT_MOST,
    DOMAINS,
    KIND_PLURALS,
    KIND_WORDS,
    STORED_ONLY,
    STREAMING_FIXED,
    STREAMING_ONLY,
    VARIED,
    Configuration,
    fits,
)

SAMPLERS = ("nsga2", "tpe", "random", "grid")
DEFAULT_POPULATION = 20

_SECTIONS = {
    "study": {"name", "description", "trials", "repeats", "seed", "sampler", "population", "storage"},
    "task": {"name", "data", "source_labels", "target_labels"},
    "model": {"name", "scheme"},
    "board": {"name", "firmware"},
    "space": set(VARIED),
    "objectives": set(MEASURES),
    "constraints": set(LIMITS),
    "deployment": set(DEPLOYMENT_FIELDS),
}
_REQUIRED_SPACE = tuple(key for key in VARIED if DOMAINS[key].required)  # cut, hidden, samples, epochs
MAX_NAME = 128
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    data: Path | None = None  # resolved against the study file's folder
    source_labels: tuple[int, ...] | None = None
    target_labels: tuple[int, ...] | None = None

    @property
    def classes(self) -> int | None:
        """Head outputs when the study file sets the labels (npz); None: the task registry knows them."""
        return len(self.target_labels) if self.target_labels else None


@dataclass(frozen=True)
class BoardLimits:
    ram_bytes: int
    flash_bytes: int


@dataclass(frozen=True)
class StudySpec:
    path: Path  # the study file as the user named it
    text: str  # its TOML text, stored with the study
    raw: dict = field(repr=False)  # the parsed TOML, for comparing two specs
    name: str
    description: str
    trials: int
    repeats: int
    seed: int
    sampler: str
    population: int
    storage: str | None  # an Optuna storage URL; None = study.db in the study folder
    task: TaskSpec
    model: str
    scheme: str
    board: str
    space: Space
    objectives: tuple[Objective, ...]
    user_constraints: tuple[Constraint, ...]
    board_limits: BoardLimits | None  # None when the spec was read without checking the environment
    firmware: str | None = None  # real boards: "microtl-dse" | "paper" (cost_models.predict.FIRMWARES); None: default
    deployment: Deployment | None = None  # [deployment]: battery and duty cycle, for the lifetime

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        board = board_constraints(self.board_limits.ram_bytes, self.board_limits.flash_bytes) if self.board_limits else []
        return (*board, *self.user_constraints)

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def identity(self) -> dict:
        """The spec without `study.trials`: what must not change when a study is resumed."""
        return _without_trials(self.raw)

    @property
    def hash(self) -> str:
        return spec_hash(self.raw)

    def configuration(self, values: dict[str, object]) -> Configuration:
        return Configuration(task=self.task.name, model=self.model, scheme=self.scheme, **values)


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite storage URL (relative as written), or None."""
    prefix = "sqlite:///"
    return Path(url[len(prefix):]) if url.startswith(prefix) and len(url) > len(prefix) else None


def spec_hash(raw: dict) -> str:
    # masked: a password is part of no stored hash, and a study file copied with its password masked (study.toml,
    # study.json) hashes as the original
    canonical = mask(json.dumps(_without_trials(raw), sort_keys=True, default=str))
    return hashlib.sha256(canonical.encode()).hexdigest()


def differences(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two parsed study files (`study.trials` excluded)."""
    a, b = _flatten(_without_trials(old)), _flatten(_without_trials(new))
    return sorted(k for k in set(a) | set(b) if a.get(k, _MISSING) != b.get(k, _MISSING))


_MISSING = object()


def _without_trials(raw: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    if isinstance(out.get("study"), dict):
        out["study"].pop("trials", None)
    return out


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not (set(v) <= {"low", "high", "step", "log"} and v):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_study_file(path: str | Path, check_environment: bool = True) -> StudySpec:
    """Read and check a study file. With check_environment, also load the board's description and calibration
    (by pricing one point of the space) and check that the data file exists."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StudyFileError(path, None, "no such study file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StudyFileError(path, None, f"cannot read the study file ({exc})") from None
    return parse_study(text, path, check_environment)


def parse_study(text: str, path: str | Path, check_environment: bool = True) -> StudySpec:
    path = Path(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyFileError(path, None, f"not valid TOML: {exc}") from None
    return _Reader(path, raw, text, check_environment).read()


def _show(value: object) -> str:
    """A value as the user wrote it in TOML (a very long one by its start and length: one readable line)."""
    text = _toml(value)
    return text if len(text) <= 120 else f"{text[:100]}... ({len(text):,} characters)"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


class _Reader:
    def __init__(self, path: Path, raw: dict, text: str, check_environment: bool) -> None:
        self.path, self.raw, self.text, self.check_env = path, raw, text, check_environment

    def fail(self, key: str | None, message: str):
        raise StudyFileError(self.path, key, message)

    # -- generic checks ---------------------------------------------------------------------------------------
    def section(self, name: str, required: bool = True) -> dict:
        if name not in self.raw:
            if required:
                self.fail(f"[{name}]", "missing section")
            return {}
        value = self.raw[name]
        if not isinstance(value, dict):
            self.fail(name, f"must be a table [{name}], got {_show(value)}")
        for key in value:
            if key not in _SECTIONS[name]:
                self.fail(f"{name}.{key}", f"unknown key (value {_show(value[key])}); "
                                            f"known keys: {', '.join(sorted(_SECTIONS[name]))}")
        return value

    def get(self, table: dict, section: str, key: str, t: type, default=_MISSING):
        if key not in table:
            if default is _MISSING:
                self.fail(f"{section}.{key}", "missing")
            return default
        value = table[key]
        if not fits(value, t):
            self.fail(f"{section}.{key}", f"must be {KIND_WORDS[t]}, got {_show(value)}")
        return float(value) if t is float else value

    def positive(self, value: int, key: str, minimum: int = 1) -> int:
        if value < minimum:
            self.fail(key, f"must be >= {minimum}, got {_show(value)}")
        return value

    # -- sections ----------------------------------------------------------------------------------------------
    def read(self) -> StudySpec:
        for name in self.raw:
            if name not in _SECTIONS:
                self.fail(name, f"unknown section (value {_show(self.raw[name])}); "
                                f"known sections: {', '.join(_SECTIONS)}")
        study = self.section("study")
        name = self.get(study, "study", "name", str)
        if len(name) > MAX_NAME:  # it names the study folder (runs/<name>) and the Optuna study
            self.fail("study.name", f"at most {MAX_NAME} characters, got {len(name):,} ({_show(name[:40])}...)")
        if not _NAME.match(name):
            self.fail("study.name", f"must be a plain name (letters, digits, . _ -), got {_show(name)}")
        description = self.get(study, "study", "description", str, "")
        trials = self.positive(self.get(study, "study", "trials", int), "study.trials")
        repeats = self.positive(self.get(study, "study", "repeats", int, 5), "study.repeats")
        seed = self.positive(self.get(study, "study", "seed", int, 0), "study.seed", 0)
        sampler = self.get(study, "study", "sampler", str, "nsga2")
        if sampler not in SAMPLERS:
            self.fail("study.sampler", f"unknown sampler {_show(sampler)}; choose one of: {', '.join(SAMPLERS)}")
        if "population" in study and sampler != "nsga2":
            self.fail("study.population", f"only for sampler \"nsga2\" (value {_show(study['population'])})")
        population = self.positive(self.get(study, "study", "population", int, DEFAULT_POPULATION),
                                   "study.population", 2)
        storage = self.get(study, "study", "storage", str, None)
        if storage is not None:
            if not re.match(r"^[a-z][a-z0-9+]*://", storage):
                self.fail("study.storage", f"must be an Optuna storage URL such as \"sqlite:///path/study.db\", "
                                           f"got {_show(storage)}")
            file = sqlite_file(storage)
            if storage.startswith("sqlite:") and (file is None or str(file) == ":memory:"):
                self.fail("study.storage", f"an in-memory database cannot be resumed or reported; name a file "
                                           f"(value {_show(storage)})")
            if file is not None and not file.is_absolute():  # like every path in a study file
                storage = f"sqlite:///{(self.path.parent / file).resolve()}"

        task = self.read_task()
        model_name, scheme = self.read_model(task)
        board = _board_name(self.get(self.section("board"), "board", "name", str), self.path)
        firmware = self.get(self.section("board"), "board", "firmware", str, None)
        if firmware is not None and firmware not in FIRMWARES:
            self.fail("board.firmware", f"must be one of {', '.join(FIRMWARES)}, got {_show(firmware)}")
        if firmware not in (None, "microtl-dse") and _instructions_only(board):
            self.fail("board.firmware", f"board {board} runs this project's firmware only; {_show(firmware)} is "
                                        f"priced on real boards")
        space = self.read_space(model_name)
        if firmware == "paper" and "streaming" in space.modes():
            self.fail("board.firmware", f"the paper's firmware has no streaming mode; price streaming with this "
                                        f"project's firmware (\"microtl-dse\") or explore mode \"stored\" only "
                                        f"(value {_show(firmware)}, space.mode {_show(self.raw['space']['mode'])})")
        if sampler == "grid":
            for key, d in space.params.items():
                if isinstance(d, Range) and not d.finite:
                    self.fail(f"space.{key}", f"the grid sampler needs a finite space; give a list or a step "
                                              f"(value {_show(self.raw['space'][key])})")
        objectives = self.read_objectives()
        constraints = self.read_constraints()
        deployment = self.read_deployment(objectives)
        spec = StudySpec(self.path, self.text, self.raw, name, description, trials, repeats, seed, sampler,
                         population, storage, task, model_name, scheme, board, space, objectives, constraints, None,
                         firmware, deployment)
        if self.check_env:
            spec = self.check_environment(spec)
        return spec

    def read_task(self) -> TaskSpec:
        table = self.section("task")
        name = self.get(table, "task", "name", str)
        try:
            task = get_task(name)
        except ValueError as exc:
            self.fail("task.name", str(exc))
        data = None
        if "data" in table:
            rel = self.get(table, "task", "data", str)
            if not task.needs_file:
                self.fail("task.data", f"task {_show(name)} ships with its data and takes no file (value {_show(rel)})")
            data = (self.path.parent / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
        elif task.needs_file and not task.target_labels:
            # a user's own file (npz); the paper's data sets may instead be found through their environment variable
            self.fail("task.data", f"missing: task {_show(name)} needs a data file")
        labels = {}
        for key in ("source_labels", "target_labels"):
            if key not in table:
                if not task.target_labels:
                    self.fail(f"task.{key}", f"missing: task {_show(name)} needs the original labels of each domain")
                labels[key] = None
                continue
            value = table[key]
            if task.target_labels:
                self.fail(f"task.{key}", f"task {_show(name)} fixes its own labels (value {_show(value)})")
            if not isinstance(value, list) or not value or not all(fits(v, int) for v in value):
                self.fail(f"task.{key}", f"must be a non-empty list of integer labels, got {_show(value)}")
            if len(set(value)) != len(value):
                self.fail(f"task.{key}", f"repeats a label: {_show(value)}")
            labels[key] = tuple(value)
        if labels["source_labels"] and labels["target_labels"]:
            common = sorted(set(labels["source_labels"]) & set(labels["target_labels"]))
            if common:
                self.fail("task.target_labels", f"labels {_show(common)} are also source labels "
                                                f"(value {_show(list(labels['target_labels']))})")
        return TaskSpec(name, data, labels["source_labels"], labels["target_labels"])

    def read_model(self, task: TaskSpec) -> tuple[str, str]:
        table = self.section("model")
        default = get_task(task.name).default_model
        name = self.get(table, "model", "name", str, default or _MISSING)
        try:
            model = get_model(name)
        except ValueError as exc:
            self.fail("model.name", str(exc))
        shape = get_task(task.name).input_shape
        if shape and tuple(shape) != tuple(model.input_shape):
            self.fail("model.name", f"model {_show(name)} takes input {model.input_shape} but task "
                                    f"{_show(task.name)} gives {tuple(shape)}")
        return name, self.get(table, "model", "scheme", str, "q7")

    def read_space(self, model_name: str) -> Space:
        table = self.section("space")
        streaming_only = table.get("mode") in ("streaming", ["streaming"])  # then epochs is not required
        for key in _REQUIRED_SPACE:
            if key not in table and not (streaming_only and key in STORED_ONLY):
                self.fail(f"space.{key}", "missing: the study must say which values it explores")
        model = get_model(model_name)
        params: dict[str, Domain] = {}
        for key, value in table.items():
            params[key] = self.read_domain(key, value)
            for v in params[key].grid() if not isinstance(params[key], Range) else (params[key].low, params[key].high):
                problem = _domain_problem(key, v, model)
                if problem:
                    self.fail(f"space.{key}", f"{problem} (value {_show(value)})")
        space = Space(params)
        self.check_modes(space)
        return space

    def check_modes(self, space: Space) -> None:
        """The streaming axis: replay only with streaming trials and never larger than every sample count; a
        streaming-only study gives no stored-only values (streaming fixes them)."""
        table = self.raw["space"]
        modes = space.modes()
        for key in STREAMING_ONLY:
            if key in space.params and "streaming" not in modes:
                self.fail(f"space.{key}", f"{key} is a streaming setting but the study explores mode \"stored\" "
                                          f"only (value {_show(table[key])}); add mode = [\"stored\", "
                                          f"\"streaming\"] or remove {key}")
        for key, other in AT_MOST.items():  # replay <= samples
            if key in space.params:
                most, most_other = _most(space.params[key]), _most(space.params[other])
                if most > most_other:
                    self.fail(f"space.{key}", f"{key} {most} is larger than every {other} value (at most "
                                              f"{most_other}): the ring could never fill (value "
                                              f"{_show(table[key])})")
        if modes == ("streaming",):
            for key in STORED_ONLY:
                d = space.params.get(key)
                fixed = STREAMING_FIXED.get(key)
                if d is None or (isinstance(d, Fixed) and (fixed is None or d.value == fixed)):
                    continue
                what = (f"{key} must be {_toml(fixed)}" if fixed is not None
                        else f"{key} has no use (no early stopping)")
                self.fail(f"space.{key}", f"mode \"streaming\" trains one pass of batch-1 steps and keeps the last "
                                          f"weights: {what} (value {_show(table[key])}); remove it")

    def read_domain(self, key: str, value: object) -> Domain:
        t = DOMAINS[key].kind
        where = f"space.{key}"
        if isinstance(value, list):
            if not value:
                self.fail(where, "empty list of choices (value [])")
            for v in value:
                if not fits(v, t):
                    self.fail(where, f"choices must be {KIND_PLURALS[t]}, got {_show(v)} in {_show(value)}")
            values = tuple(float(v) if t is float else v for v in value)
            if len(set(values)) != len(values):
                self.fail(where, f"repeats a choice: {_show(value)}")
            return Choice(values) if len(values) > 1 else Fixed(values[0])
        if isinstance(value, dict):
            if t is str:
                self.fail(where, f"a range needs numbers; give a name or a list of names, got {_show(value)}")
            if t is bool:
                self.fail(where, f"must be true or false or a list of them, got {_show(value)}")
            for k in value:
                if k not in ("low", "high", "step", "log"):
                    self.fail(f"{where}.{k}", f"unknown key in a range (value {_show(value[k])}); "
                                              "known keys: high, log, low, step")
            if "low" not in value or "high" not in value:
                self.fail(where, f"a range needs low and high, got {_show(value)}")
            low, high = self.get(value, where, "low", t), self.get(value, where, "high", t)
            step = self.get(value, where, "step", t, None)
            log = self.get(value, where, "log", bool, False)
            if low > high:
                self.fail(where, f"range low {_show(value['low'])} > high {_show(value['high'])}")
            if step is not None and step <= 0:
                self.fail(where, f"range step must be > 0, got {_show(value['step'])}")
            if log and step is not None and not (t is int and step == 1):
                self.fail(where, f"a log range takes no step (value {_show(value)})")
            if log and low <= 0:
                self.fail(where, f"a log range needs low > 0, got {_show(value['low'])}")
            if step is not None:
                n = (high - low) / step
                if abs(n - round(n)) > 1e-9:
                    self.fail(where, f"range high {_show(value['high'])} is not low + a whole number of steps "
                                     f"{_show(value['step'])}")
            if low == high:
                return Fixed(low)
            return Range(low, high, step if step is None or t is float else int(step), log, integer=t is int)
        if not fits(value, t):
            self.fail(where, f"must be {KIND_WORDS[t]}, a list of choices or a range {{low, high}}, "
                             f"got {_show(value)}")
        return Fixed(float(value) if t is float else value)

    def read_objectives(self) -> tuple[Objective, ...]:
        table = self.section("objectives")
        if not table:
            self.fail("objectives", f"empty: name at least one of {', '.join(MEASURES)}")
        out = []
        for key, value in table.items():
            measure = MEASURES[key]
            if value not in ("maximize", "minimize"):
                self.fail(f"objectives.{key}", f"must be \"maximize\" or \"minimize\", got {_show(value)}")
            if value != measure.natural:
                self.fail(f"objectives.{key}", f"{key} can only be {measure.natural}d, got {_show(value)}")
            out.append(Objective(measure))
        return tuple(out)

    def read_deployment(self, objectives: tuple[Objective, ...]) -> Deployment | None:
        """The battery and duty cycle; required by the lifetime objective."""
        if "deployment" not in self.raw:
            wanted = [o for o in objectives if o.name == "lifetime"]
            if wanted:
                self.fail("objectives.lifetime", f"needs a [deployment] table (battery_mah, battery_v, "
                                                 f"inferences_per_hour, adaptations_per_month; value "
                                                 f"{_show(self.raw['objectives']['lifetime'])})")
            return None
        try:
            return deployment_from_table(self.raw["deployment"])
        except DeploymentError as exc:
            key = "deployment" if exc.key == "deployment" else f"deployment.{exc.key}"
            self.fail(key, str(exc)[len(exc.key) + 2:])

    def read_constraints(self) -> tuple[Constraint, ...]:
        table = self.section("constraints", required=False)
        out = []
        for key, value in table.items():
            if not fits(value, float) or not value > 0:
                self.fail(f"constraints.{key}", f"must be a number > 0, got {_show(value)}")
            if key == "accuracy_min" and value > 1:
                self.fail(f"constraints.{key}", f"is a fraction of the test set (0 to 1], got {_show(value)}")
            out.append(user_constraint(key, value))
        return tuple(out)

    # -- the environment: data file, quantization scheme, board description and calibration -------------------
    def check_environment(self, spec: StudySpec) -> StudySpec:
        from models.data import DataError, load_task, max_balanced
        from models.quantize import get_scheme

        task = spec.task
        if task.data is not None and not task.data.exists():  # a file, or a data set's extracted directory
            self.fail("task.data", f"no such data file {_show(self.raw['task']['data'])} (looked for {task.data})")
        try:
            data = load_task(task.name, task.data, task.source_labels, task.target_labels)
        except DataError as exc:
            self.fail("task.data", f"{exc} (value {_show(self.raw['task'].get('data'))})")
        except ValueError as exc:
            self.fail("task", str(exc))
        model = get_model(spec.model)
        if tuple(model.input_shape) != tuple(data.input_shape):
            self.fail("model.name", f"model {_show(spec.model)} takes input {tuple(model.input_shape)} but the "
                                    f"data of task {_show(task.name)} has {tuple(data.input_shape)}")
        if model.classifier.units != data.source_classes:
            self.fail("model.name", f"model {_show(spec.model)} was built for {model.classifier.units} source "
                                    f"classes but task {_show(task.name)} has {data.source_classes}")
        limit = max_balanced(data.target_pool.y, data.target_classes)
        most = _most(spec.space.params["samples"])
        if most > limit:
            self.fail("space.samples", f"{most} samples is more than the target pool of task {_show(task.name)} "
                                       f"can give balanced (at most {limit}; value {_show(self.raw['space']['samples'])})")
        try:
            get_scheme(spec.scheme)
        except ValueError as exc:
            self.fail("model.scheme", f"{exc} (value {_show(spec.scheme)})")

        # one point of each mode the space explores: a mode the board's cost models cannot price fails here
        probes = [spec.configuration(spec.space.first(mode)) for mode in spec.space.modes()]
        for probe in probes:
            try:
                board = load_board(spec.board)
                # Pricing one point of the space loads the board's calibration: a board without one fails here,
                # before anything is written, instead of in every trial.
                price(probe, spec.board, classes=spec.task.classes, firmware=spec.firmware)
            except ValueError as exc:
                if _is_cost_model_error(exc):
                    self.fail("board.name", f"{exc} (value {_show(self.raw['board']['name'])})")
                if probe.streaming:
                    self.fail("space.mode", f"the cost models cannot price streaming on board "
                                            f"{_show(self.raw['board']['name'])}: {exc} (value "
                                            f"{_show(self.raw['space']['mode'])})")
                self.fail(None, f"the cost models cannot price {probe}: {exc}")
            if spec.deployment is not None:
                try:  # the probe's lifetime: a board without sleep current or power figures fails here
                    lifetime_for(probe, price(probe, spec.board, classes=spec.task.classes, firmware=spec.firmware),
                                 spec.deployment, board, classes=spec.task.classes, firmware=spec.firmware)
                except ValueError as exc:
                    mode = f", mode {_show(probe.mode)}" if "mode" in spec.space.params else ""
                    self.fail("deployment", f"{exc} (board {_show(self.raw['board']['name'])}{mode})")
        limits = BoardLimits(int(board.ram_bytes), int(board.flash_bytes))
        return replace(spec, board_limits=limits)


def _most(d: Domain) -> object:
    """The largest value a parameter's domain gives."""
    return d.high if isinstance(d, Range) else max(d.grid())


def _is_cost_model_error(exc: Exception) -> bool:
    return isinstance(exc, (BoardSpecError, CalibrationError, RecordError))


def _board_name(value: str, study_file: Path) -> str:
    """A packaged board's name, or a board file's path resolved against the study file's folder."""
    if value.endswith(".toml") or "/" in value:
        path = Path(value)
        return str(path if path.is_absolute() else (study_file.parent / path).resolve())
    return value


def _instructions_only(board: str) -> bool:
    """Whether `board` is an emulated board that counts instructions (False if it does not load: that error is
    reported where the board is checked)."""
    try:
        return load_board(board).instructions_only
    except (ValueError, OSError):
        return False


def _domain_problem(key: str, value: object, model) -> str | None:
    """Why `value` cannot be a `key` of any trial's Configuration (its declared domain, with the study file's
    bounds), or None."""
    d = DOMAINS[key]
    if d.cut_point:
        try:
            model.check_cut(value)
        except ValueError as exc:
            return str(exc)
        return None
    if d.holds(value, study=True):
        return None
    if d.choices is not None:
        return f"unknown {key} {_show(value)}; choose from {', '.join(d.choices)}"
    return f"{d.rule(study=True)}, got {_show(value)}"
