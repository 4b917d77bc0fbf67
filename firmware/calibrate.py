"""The calibration campaign: real firmwares over a grid of shapes, run on a board, as run records for cost_models.

Every point is a full firmware of a zoo model at one cut (so the frozen layers are the real kernels over the shapes
that cut reaches) with a head shape, batch size, sample count and epoch budget; patience = epochs, so the epochs
run are known. The grid: digits_cnn (conv2d, maxpool, fc, ReLU) here, and the recurrent models' conv1d, LSTM and
GRU kernels (int8 and int16 sequences) from firmware/calibrate_rnn.py, whose har3b points run on generated UCI HAR
data (rows with source `campaign:generated-uci-har`), and the paper's CIFAR CNN from firmware/calibrate_cifar.py on
generated CIFAR-10 files (`campaign:generated-cifar10`); and streaming (TinyOL) points of digits_cnn and the
recurrent models (`streaming_configurations`: batch-1 steps per collected sample with a ring of K features, some
held out of the fit by benchmarks/streaming_cost.py). Each point goes through the same generate -> build -> run ->
parse path as `dse validate` (firmware.validate), and becomes rows of cost_models.runs: instructions per phase,
peak RAM, flash, static RAM, stack, with provenance, and the static Cortex-M4 cycle estimate per phase
(`cycles_estimate`, labelled an estimate with its assumptions) where the board made one. Finished points are skipped by key, so an interrupted campaign
resumes.

Validation records of studies (firmware/records.py JSON) become rows through the same conversion
(`rows_from_validation`), which closes the loop: every validation is calibration data.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from tqdm import tqdm

from models.tasks import get_task
from vocabulary.configuration import Configuration
from vocabulary.validation_record import Predicted, ValidationRecord

from .calibrate_cifar import GENERATED_CIFAR_SOURCE, CifarGrid, generated_cifar10
from .calibrate_rnn import GENERATED_HAR_SOURCE, RnnGrid, generated_uci_har, streaming_config
from .run_records import append_rows, make_rows, measured_keys, run_key
from .validate import validate

CAMPAIGN_TIMEOUT_S = 300.0


def campaign_data(task: str, work: str | Path) -> Path | None:
    """The data path of a campaign point: har3b and cifar3 run on generated files in their data sets' layouts
    under `work` (the same content every time, so the pretrained network and features come from the cache after
    the first point); other tasks need none (digits, basicmotions ship with their packages)."""
    if task == "har3b":
        return generated_uci_har(Path(work) / "generated-uci-har")
    if task == "cifar3":
        return generated_cifar10(Path(work) / "generated-cifar10")
    return None


def campaign_source(task: str) -> str:
    """The rows' source column: says when the inputs were generated rather than a data set's."""
    return {"har3b": GENERATED_HAR_SOURCE, "cifar3": GENERATED_CIFAR_SOURCE}.get(task, "campaign")


@dataclass(frozen=True)
class Grid:
    """The campaign's grid (a configuration, not results): what varies and over which values."""

    task: str = "digits"
    model: str = "digits_cnn"
    cuts: tuple[str, ...] = ("conv1", "conv2", "pool2", "fc1")
    hidden: tuple[int, ...] = (0, 8, 16, 32)
    batch: tuple[int, ...] = (4, 8, 16)
    samples: tuple[int, ...] = (30, 90, 200)
    epochs: tuple[int, ...] = (2,)
    # extra points with a different epoch budget, so per-epoch and once-per-run costs separate
    epoch_variants: tuple[tuple[str, int, int, int, int], ...] = (
        ("conv2", 8, 4, 80, 5), ("pool2", 32, 16, 60, 4), ("fc1", 0, 4, 100, 6), ("conv1", 8, 8, 120, 3),
        ("conv1", 0, 8, 50, 4), ("pool2", 8, 8, 200, 3), ("fc1", 32, 8, 40, 5), ("conv2", 0, 16, 120, 3),
        # the ends of the quickstart's sample range, and partial last batches of other lengths
        ("fc1", 16, 16, 20, 6), ("pool2", 0, 8, 300, 3), ("conv2", 16, 8, 40, 4), ("fc1", 8, 8, 300, 4),
        ("pool2", 16, 4, 20, 5), ("fc1", 0, 16, 250, 5),
        # the smallest and a large batch (one SGD step per sample at batch 1)
        ("fc1", 8, 1, 60, 3), ("conv2", 0, 2, 90, 3), ("pool2", 16, 32, 200, 3),
    )
    # the trainer's memory variants (cut, hidden, batch, samples, epochs, momentum, restore_best): momentum 0 at
    # batch 1 runs the bufferless per-sample update, restore_best off copies no weights
    trainer_variants: tuple[tuple[str, int, int, int, int, float, bool], ...] = (
        ("fc1", 8, 1, 60, 3, 0.0, False), ("pool2", 0, 1, 90, 3, 0.0, True), ("conv2", 16, 1, 40, 4, 0.0, False),
        ("conv2", 16, 8, 120, 4, 0.0, False), ("fc1", 32, 4, 200, 3, 0.9, False), ("conv1", 0, 16, 90, 3, 0.9, False),
        ("pool2", 32, 1, 120, 3, 0.0, False), ("fc1", 0, 1, 200, 3, 0.0, False),
    )
    # streaming (TinyOL) points (cut, hidden, samples, replay, momentum): batch-1 steps on each sample as it is
    # collected and on a ring of K earlier features; hidden 0 / > 0, K 0 / > 0 (and K = N), momentum 0 (direct
    # update) / 0.9 (update buffer), over every cut's feature width, so each streaming count is observed
    streaming: tuple[tuple[str, int, int, int, float], ...] = (
        ("conv1", 0, 30, 0, 0.9), ("conv1", 8, 60, 8, 0.0), ("conv2", 0, 90, 8, 0.9), ("conv2", 16, 40, 32, 0.0),
        ("pool2", 0, 200, 0, 0.0), ("pool2", 8, 120, 32, 0.9), ("pool2", 32, 60, 8, 0.9), ("fc1", 0, 60, 32, 0.9),
        ("fc1", 16, 200, 8, 0.0), ("fc1", 8, 90, 0, 0.9), ("fc1", 32, 30, 30, 0.9),
    )
    # streaming points measured like the others but left out of the fit by benchmarks/streaming_cost.py (its
    # held-out error): new N, K and momentum on fitted shapes, and shapes no streaming run of the fit has
    streaming_holdout: tuple[tuple[str, int, int, int, float], ...] = (
        ("conv2", 8, 150, 16, 0.9), ("pool2", 16, 80, 4, 0.0), ("fc1", 0, 120, 16, 0.0), ("conv1", 0, 100, 32, 0.0),
    )
    recurrent: RnnGrid | None = RnnGrid()  # conv1d / LSTM / GRU points of har_rnn and motions_rnn (None: digits only)
    cifar: CifarGrid | None = CifarGrid()  # the paper's CIFAR CNN on generated CIFAR-10 files (None: leave out)

    def configurations(self) -> list[Configuration]:
        out = [Configuration(task=self.task, model=self.model, cut=c, hidden=h, samples=n, epochs=e, batch=b,
                             patience=e)
               for c, h, b, n, e in itertools.product(self.cuts, self.hidden, self.batch, self.samples, self.epochs)]
        out += [Configuration(task=self.task, model=self.model, cut=c, hidden=h, samples=n, epochs=e, batch=b,
                              patience=e) for c, h, b, n, e in self.epoch_variants]
        out += [Configuration(task=self.task, model=self.model, cut=c, hidden=h, samples=n, epochs=e, batch=b,
                              patience=e, momentum=m, restore_best=r) for c, h, b, n, e, m, r in self.trainer_variants]
        return (out + (self.recurrent.configurations() if self.recurrent else [])
                + (self.cifar.configurations() if self.cifar else []) + self.streaming_configurations())

    def streaming_configurations(self, holdout: bool | None = None) -> list[Configuration]:
        """The streaming points (holdout True / False: only the held-out / fitted ones; None: all)."""
        points = [(p, False) for p in self.streaming] + [(p, True) for p in self.streaming_holdout]
        out = [streaming_config(self.task, self.model, *p) for p, held in points if holdout in (None, held)]
        return out + (self.recurrent.streaming_configurations(holdout) if self.recurrent else [])


def rows_from_validation(record: ValidationRecord, source: str, classes: int | None = None) -> list[dict]:
    """Run-record rows of one validation record (nothing for a failed one or a board without instructions)."""
    m = record.measured
    if not record.ok or not m.instructions or m.epochs_run is None or m.test is None:
        return []
    config = Configuration.from_dict(record.configuration)
    if classes is None:
        classes = get_task(config.task).classes
    measured = {f"instructions.{k}": v for k, v in m.instructions.items()}
    measured.update(peak_ram=m.peak_ram_bytes, flash=m.flash_bytes, static_ram=m.static_ram_bytes,
                    stack=m.stack_bytes, deployed_ram=m.deployed_peak_ram_bytes,
                    deployed_flash=m.deployed_flash_bytes, harness_ram=m.harness_ram_bytes,
                    harness_flash=m.harness_flash_bytes)
    # the static Cortex-M4 cycle estimate per phase (qemu-an386: per-block counts x TRM timing), when it was made
    measured.update({f"cycles_estimate.{k}": v for k, v in (m.cycles_estimate or {}).items() if v})
    p = record.provenance
    emulator = (p.board_versions or {}).get("qemu", record.board)
    provenance = {"source": source, "sources_sha256": p.sources_sha256, "elf_sha256": p.elf_sha256,
                  "toolchain": p.toolchain, "emulator": emulator, "date": (p.date_utc or "")[:10]}
    return make_rows(record.board, config, classes, m.test, m.epochs_run, m.best_epoch or 0, measured, provenance,
                     key=run_key(config, classes, m.test), improvements=m.improvements,
                     estimate_source=m.cycles_estimate_source or "")


def timed_rows_from_validation(record: ValidationRecord, source: str, classes: int | None = None) -> list[dict]:
    """Run-record rows of one real-board validation: cycles per phase (and energy when a PPK2 measured it), for the
    board's emulator map. Nothing for a failed record or one without cycles (the emulated board's)."""
    m = record.measured
    if not record.ok or not m.cycles or m.instructions or m.epochs_run is None or m.test is None:
        return []
    config = Configuration.from_dict(record.configuration)
    if classes is None:
        classes = get_task(config.task).classes
    measured = {f"cycles.{k}": v for k, v in m.cycles.items()}
    measured.update({f"energy_nj.{k}": round(v * 1e6) for k, v in (m.energy_mj or {}).items()})
    p = record.provenance
    provenance = {"source": source, "sources_sha256": p.sources_sha256, "elf_sha256": p.elf_sha256,
                  "toolchain": p.toolchain, "emulator": f"{record.board} ({m.cycles_source or 'cycles'}"
                                                        f"{'; ' + m.energy_source if m.energy_mj else ''})",
                  "date": (p.date_utc or "")[:10]}
    return make_rows(record.board, config, classes, m.test, m.epochs_run, m.best_epoch or 0, measured, provenance,
                     key=run_key(config, classes, m.test), improvements=m.improvements)


def measure(config: Configuration, board, work: Path, data_path: str | Path | None = None) -> ValidationRecord:
    """One campaign point through the validation path (generate, build, run, parse)."""
    return validate(config, board, work, Predicted(board=board.name), study="calibration", trial=0,
                    timeout_s=CAMPAIGN_TIMEOUT_S, data_path=data_path)


def untested_key(key: str) -> str:
    """A run key without its test-input count (`/t<T>`), which is known only after generation; what follows it
    (`/last`: restore_best off) stays, so restore_best on and off are different points."""
    return re.sub(r"/t\d+(?=/|$)", "", key)


def unmeasured(configs: Iterable[Configuration], done: Iterable[str]) -> list[Configuration]:
    """The configurations whose key (up to the test count) is not among the measured keys `done`."""
    seen = {untested_key(k) for k in done}
    return [c for c in configs if untested_key(run_key(c, get_task(c.task).classes, 0)) not in seen]


def run_campaign(configs: Iterable[Configuration], out_csv: str | Path, work: str | Path, board, *,
                 progress: bool = True, say: Callable[[str], None] = print) -> tuple[int, int, list[str]]:
    """Measure every configuration whose key `out_csv` lacks; append its rows as soon as it finished.
    Returns (measured now, already measured, failures); points that do not fit the board are skipped (said)."""
    configs = list(configs)
    todo = unmeasured(configs, measured_keys(out_csv))
    failures: list[str] = []
    unfit = 0
    bar = tqdm(todo, desc=f"calibrate {board.name}", unit="run", disable=not progress)
    for i, config in enumerate(bar):
        point = f"{config.model} {config.cut} h{config.hidden} b{config.batch} n{config.samples}"
        bar.set_postfix_str(f"{point} e{config.epochs}")
        record = measure(config, board, Path(work) / f"point-{i}", campaign_data(config.task, work))
        rows = rows_from_validation(record, source=campaign_source(config.task))
        if not rows and record.reason.startswith("does not fit"):
            say(f"calibrate: skipped {point}: {record.reason}")
            unfit += 1
            continue
        if not rows:
            failures.append(f"{point}: {record.reason or 'no instruction counts'}")
            continue
        append_rows(out_csv, rows)
    for f in failures:
        say(f"calibrate: failed: {f}")
    return len(todo) - len(failures) - unfit, len(configs) - len(todo), failures
