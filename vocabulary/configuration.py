"""The configuration: the one vocabulary the search proposes, models evaluate, cost models price and
firmware builds. Defined once, here: each field carries its domain (`field(metadata=domain(...))`: bounds or
choices, whether a study file may vary it, which mode takes it), and everything that checks, varies or trains on a
field derives from `DOMAINS` (dse.study.space, dse.study.file, models.head_params.SGDParams)."""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from math import isfinite
from numbers import Real


def validation_count(samples: int) -> int:
    """Validation samples out of `samples` drawn ones: 10%, at least 1 (none when only 1 sample is drawn).

    The one rule shared by the configuration, the sample draw (models.data) and the firmware.
    """
    return max(1, round(samples * 0.1)) if samples > 1 else 0


MODES = ("stored", "streaming")
# what streaming fixes (one pass of batch-1 steps, the last weights kept); a study's streaming trials take these.
# In this order in every message that names them.
STREAMING_FIXED = {"batch": 1, "epochs": 1, "restore_best": False}

# how a value's kind reads in a message ("must be an integer"), and the kinds' plurals ("choices must be integers")
KIND_WORDS: dict[type, str] = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
KIND_PLURALS: dict[type, str] = {int: "integers", float: "numbers", str: "strings", bool: "true or false"}


def fits(value: object, kind: type) -> bool:
    """Whether `value` is of `kind`: a bool is no integer or number, an integer is a number."""
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, Real)
    return isinstance(value, kind)


@dataclass(frozen=True)
class FieldDomain:
    """The values one Configuration field may take, and what a study does with it. `kind` and `default` come from
    the field itself (annotation, default); the rest is declared on the field with `domain(...)`."""

    kind: type = str
    default: object = None
    required: bool = False  # no default: every configuration names it
    at_least: int | None = None  # value >= at_least
    above: int | None = None  # value > above
    below: int | None = None  # value < below
    choices: tuple[str, ...] | None = None
    cut_point: bool = False  # one of the model's cut points (the model checks it: models.zoo check_cut)
    study_at_least: int | None = None  # a study file asks more than a configuration does
    varied: bool = True  # a study file's [space] may vary it (False: another section of the study file names it)
    training: bool = False  # an SGD setting of the head (models.head_params.SGDParams holds these)
    stored_only: bool = False  # streaming ignores it (no early stopping); a streaming trial keeps the fixed value
    streaming_only: bool = False  # a stored configuration has the default (no ring)
    at_most: str | None = None  # the field it may not exceed (replay <= samples: a larger ring never fills)

    def rule(self, study: bool = False) -> str | None:
        """What the bounds ask, as a message says it ("must be >= 0", "must be in [0, 1)"); None: no bounds.
        `study`: the study file's bounds (`study_at_least` where declared)."""
        if self.choices is not None:
            return f"must be one of {', '.join(self.choices)}"
        low = self.study_at_least if study and self.study_at_least is not None else self.at_least
        if low is not None and self.below is not None:
            return f"must be in [{low}, {self.below})"
        if low is not None:
            return f"must be >= {low}"
        if self.above is not None:
            return f"must be > {self.above}"
        return None

    def holds(self, value: object, study: bool = False) -> bool:
        """Whether `value` (of this kind) is within the bounds; a number must be finite (a NaN or infinite decay or
        learning rate trains nothing the firmware can run)."""
        if self.choices is not None:
            return value in self.choices
        if self.kind is float and not isfinite(value):
            return False
        low = self.study_at_least if study and self.study_at_least is not None else self.at_least
        return ((low is None or value >= low) and (self.above is None or value > self.above)
                and (self.below is None or value < self.below))


def domain(**declared) -> dict:
    """A field's metadata: its domain (FieldDomain's arguments but kind and default, which the field gives)."""
    return {"domain": FieldDomain(**declared)}


@dataclass(frozen=True)
class Configuration:
    """One point of the design space.

    `hidden == 0` means the head is a single FC layer (feature -> classes); otherwise FC(feature -> hidden),
    ReLU, FC(hidden -> classes). `epochs` is the budget; early stopping may end training sooner, and keeps the
    best epoch's weights when `restore_best` (else the last ones).

    `mode` is how the head learns: "stored" (MicroTL: store N features, then train for up to `epochs` with a
    validation split and early stopping) or "streaming" (TinyOL: one SGD step of batch 1 on each sample right
    after its forward pass, plus one step on each of the `replay` most recent earlier features kept in a ring;
    one pass, no validation split, no early stopping, the last weights kept). Streaming therefore fixes batch 1,
    epochs 1 and restore_best off; `replay` is 0 in stored mode.
    """

    task: str = field(metadata=domain(varied=False))  # the study file's [task]
    model: str = field(metadata=domain(varied=False))  # [model]
    cut: str = field(metadata=domain(cut_point=True))
    hidden: int = field(metadata=domain(at_least=0))
    samples: int = field(metadata=domain(at_least=1, study_at_least=2))
    epochs: int = field(metadata=domain(at_least=1, training=True))
    batch: int = field(default=8, metadata=domain(at_least=1, training=True))
    lr: float = field(default=0.01, metadata=domain(above=0, training=True))
    momentum: float = field(default=0.9, metadata=domain(at_least=0, below=1, training=True))
    decay: float = field(default=1e-4, metadata=domain(at_least=0, training=True))
    patience: int = field(default=5, metadata=domain(at_least=1, training=True, stored_only=True))
    scheme: str = field(default="q7", metadata=domain(varied=False))  # [model]
    # early stopping restores the best epoch's weights (a copy: 4 B per head parameter)
    restore_best: bool = field(default=True, metadata=domain(training=True))
    mode: str = field(default="stored", metadata=domain(choices=MODES, training=True))  # MicroTL | TinyOL
    # streaming only: ring of the K most recent earlier features, each trained with every new sample
    replay: int = field(default=0, metadata=domain(at_least=0, training=True, streaming_only=True, at_most="samples"))

    def __post_init__(self) -> None:
        for name in _TYPE_CHECKED:
            value, kind = getattr(self, name), DOMAINS[name].kind
            if not fits(value, kind):
                raise ValueError(f"configuration: {name} must be {KIND_WORDS[kind]}, got {value!r}")
        for name in _BOUND_CHECKED:
            value, d = getattr(self, name), DOMAINS[name]
            if not d.holds(value):
                raise ValueError(f"configuration: {name} {d.rule()}, got {value!r}")
        if self.mode == "stored":
            for name in STREAMING_ONLY:
                value, default = getattr(self, name), DOMAINS[name].default
                if value != default:
                    raise ValueError(f"configuration: {name} is a streaming setting; mode 'stored' needs {name} "
                                     f"{default}, got {value}")
        if self.mode == "streaming":
            for name, other in AT_MOST.items():
                if getattr(self, name) > getattr(self, other):
                    raise ValueError(f"configuration: {name} must be at most {other} ({getattr(self, other)}), "
                                     f"got {getattr(self, name)}")
            for name, value in STREAMING_FIXED.items():
                if getattr(self, name) != value:
                    raise ValueError(f"configuration: mode 'streaming' trains one pass with batch 1 and keeps the "
                                     f"last weights: {name} must be {str(value).lower()}, got "
                                     f"{str(getattr(self, name)).lower()}")

    @property
    def streaming(self) -> bool:
        return self.mode == "streaming"

    @property
    def train_samples(self) -> int:
        """Samples used for SGD; the rest (10%, at least 1) is the validation set for early stopping."""
        return self.samples - self.val_samples

    @property
    def val_samples(self) -> int:
        """Streaming has no validation split: every sample trains the head once."""
        return 0 if self.streaming else validation_count(self.samples)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Configuration":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"configuration: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


_KINDS = {"int": int, "float": float, "str": str, "bool": bool}  # the annotations, as strings (postponed)
# every field's domain, in field order
DOMAINS: dict[str, FieldDomain] = {
    f.name: replace(f.metadata["domain"], kind=_KINDS[f.type], default=None if f.default is MISSING else f.default,
                    required=f.default is MISSING)
    for f in fields(Configuration)}
VARIED = tuple(name for name, d in DOMAINS.items() if d.varied)  # the keys of a study file's [space]
TRAINING = tuple(name for name, d in DOMAINS.items() if d.training)  # the head's SGD settings
STREAMING_ONLY = tuple(name for name, d in DOMAINS.items() if d.streaming_only)  # only a streaming trial takes
# what a streaming trial does not take: what streaming fixes, then what it ignores (patience: no early stopping)
STORED_ONLY = (*STREAMING_FIXED, *(name for name, d in DOMAINS.items() if d.stored_only))
AT_MOST = {name: d.at_most for name, d in DOMAINS.items() if d.at_most}  # field -> the field it may not exceed

# The order of the checks, which decides which of several problems a message names (the order they always had):
# types kind by kind (names are checked by their registries: task, model, cut, scheme); bounds kind by kind, a
# field of one mode after the mode.
_TYPE_CHECKED = tuple(name for kind in (int, bool, float) for name, d in DOMAINS.items() if d.kind is kind)
_BOUND_CHECKED = tuple(name for streaming_only in (False, True) for kind in (int, float, str)
                       for name, d in DOMAINS.items()
                       if d.kind is kind and d.streaming_only is streaming_only and d.rule() is not None)
