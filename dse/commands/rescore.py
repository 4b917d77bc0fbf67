"""`dse rescore DIR`: re-price a finished study with the current (refitted) firmware cost models and show how its
Pareto front moved.

Every complete trial is priced again the way the study priced it (same board, epochs run, classes, no test inputs)
but with this project's firmware model ("microtl-dse") as it is fitted now, or with a calibration snapshot
(`--calibration`, from `dse calibrate --out`). On a real board (nrf52840dk) that is RAM and flash from the
emulator's firmware model + the measured platform layer, and time and energy of each phase = predicted
instructions x CPI / clock x phase power from the board's emulator map; the map is refitted in memory for the
calibration used (cheap: Table III + the calibration; the platform layer is taken from the map file), so a
refit of the qemu-an386 records moves the CPI with it. On an instructions-only board (qemu-an386) it is RAM,
flash and instructions; energy and latency keep the study's values there (no clock).

The study's own predictions (trial user attribute "predicted") are never touched: the new ones go into the study
user attribute "rescored/<board>/<id>" (Optuna does not let finished trials change) and DIR/rescore/<board>-<id>
.json, where <id> names the calibration (and map) used; DIR/rescore/<board>-<id>.png plots the old and new fronts,
one panel per cost objective, with feasibility under the study's constraints re-evaluated.
"""
from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import optuna

from cost_models.board import BoardSpecError, load_board
from cost_models.microtl_dse.emulator_map import EmulatorMapError, build_map, load_emulator_map, map_path
from cost_models.microtl_dse.fit import FirmwareCalibrationError, load_firmware_calibration, read_firmware_calibration
from cost_models.paper.calibration import CalibrationError
from cost_models.paper.records import RecordError
from cost_models.predict import predict
from dse.atomic import save_figure, write_text
from dse.errors import UserError
from dse.reports.rescore_plot import rescore_figure
from dse.study.folder import StudyFolder
from dse.study.objectives import COSTS, board_constraints
from dse.study.trial_attrs import ATTR_ACCURACY, ATTR_CONFIG, ATTR_PREDICTED
from vocabulary.configuration import Configuration
from vocabulary.phases import PHASES

CLOCKED = ("energy", "latency")  # measures an instructions-only board cannot price


# --- pure parts: fronts, feasibility, changes ----------------------------------------------------------------------

def front(points: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Non-dominated (number, accuracy, cost) points: accuracy maximized, cost minimized; sorted by cost."""
    out = []
    for n, acc, cost in sorted(points, key=lambda p: (p[2], -p[1])):
        if not out or acc > out[-1][1]:
            out.append((n, acc, cost))
    return out


def pareto(values: dict[int, tuple[float, ...]], directions: list[str]) -> set[int]:
    """Trial numbers whose objective values no other point dominates (Optuna's definition: equal points are all
    kept)."""
    sign = [-1.0 if d == "maximize" else 1.0 for d in directions]
    pts = {n: tuple(s * v for s, v in zip(sign, vals)) for n, vals in values.items()}
    out = set()
    for n, p in pts.items():
        if not any(all(a <= b for a, b in zip(q, p)) and q != p for m, q in pts.items() if m != n):
            out.add(n)
    return out


def measure_value(measure: str, accuracy: float | None, prediction: dict) -> float | None:
    if measure == "accuracy":
        return accuracy
    value = prediction.get(COSTS[measure])
    return None if value is None else float(value)


def median_change(pairs: list[tuple[float, float]]) -> dict | None:
    """Median, min and max of new / old - 1 over (old, new) pairs with a non-zero old value."""
    changes = sorted(new / old - 1 for old, new in pairs if old)
    if not changes:
        return None
    return {"median": statistics.median(changes), "min": changes[0], "max": changes[-1], "n": len(changes)}


# --- what the trials are priced with -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pricing:
    board: object  # cost_models.board.BoardSpec
    calibration: object  # the emulator's FirmwareCalibration
    emulator_map: object | None  # real boards: the map used (file or refitted in memory)
    map_note: str  # how the map was obtained; "" on instructions-only boards
    id: str  # names calibration (+ map) in the attribute key and file names

    @property
    def emulator(self) -> str:
        return self.calibration.board


def pricing(board_name: str, snapshot=None) -> Pricing:
    """The board, the firmware calibration (the emulator's current fit or `snapshot`) and, on a real board, the
    emulator map fitted for that calibration."""
    try:
        board = load_board(board_name)
        if board.instructions_only:
            emulator, m = board.name, None
        else:
            m = load_emulator_map(board)
            emulator = m.emulator
        if snapshot is not None and snapshot.board != emulator:
            raise UserError(f"--calibration: the snapshot is a firmware calibration of {snapshot.board!r}; "
                            f"{board.name} is priced with {emulator!r}'s")
        cal = snapshot or load_firmware_calibration(emulator)
        if m is None:
            return Pricing(board, cal, None, "", cal.digest[:12])
        fitted = build_map(board, emulator, platform=m.platform, fw_cal=cal)
    except (BoardSpecError, EmulatorMapError, FirmwareCalibrationError, CalibrationError, RecordError) as exc:
        raise UserError(" ".join(str(exc).split())) from None
    except (TypeError, KeyError, AttributeError) as exc:  # a snapshot whose coefficients are not numbers
        if snapshot is None:
            raise
        raise UserError(f"--calibration: the snapshot cannot price the Table III records of the {board_name} "
                        f"emulator map ({type(exc).__name__}: {exc})") from None
    file_cpi, cpi = m.phases["training"].cpi, fitted.phases["training"].cpi
    if not m.stale and fitted.inputs == m.inputs and fitted.phases == m.phases:
        used, note = m, f"the {board.name} emulator map file {map_path(board)} as is (up to date, CPI {cpi:.4g})"
    else:
        used = fitted
        why = "; ".join(m.stale) or "it was fitted on another firmware calibration than this one"
        note = (f"the {board.name} emulator map refitted in memory for this calibration (training CPI {file_cpi:.5g} "
                f"in the file -> {cpi:.5g}; power from Table III / board file; platform layer from the file); the "
                f"map file is not current for it ({why})")
        if snapshot is None:
            note += f": refit the file with `dse calibrate --board {board.name} --refit`"
    maps = json.dumps({p: [v.cpi, v.power_w] for p, v in used.phases.items()}, sort_keys=True)
    ident = hashlib.sha256(f"{cal.digest}\n{maps}\n{used.platform}".encode()).hexdigest()[:12]
    return Pricing(board, cal, used, note, ident)


def price_trial(config, pr: Pricing, epochs: float, classes: int | None):
    """Our firmware's prediction for one trial, priced as the study's evaluator prices (no test inputs: a deployed
    device does not evaluate)."""
    if pr.board.instructions_only:
        return predict(config, pr.board, epochs_run=epochs, classes=classes, firmware_calibration=pr.calibration)
    return predict(config, pr.board, epochs_run=epochs, classes=classes, firmware="microtl-dse",
                   firmware_calibration=pr.calibration, emulator_map=pr.emulator_map)


def stored_prediction(p, clocked: bool) -> dict:
    """What is kept per trial (plain values): totals, per-phase time and energy, instructions, fits."""
    d = p.to_dict()
    keep = ("ram_total", "flash_total", "latency_s", "energy_mj", "phases_included", "fits_ram", "fits_flash",
            "firmware")
    out = {k: d[k] for k in keep}
    out.update({k: v for k, v in d.items() if k.startswith(("time.", "energy.", "instructions."))})
    if not clocked:  # instructions-only board: no time or energy at all (not zero)
        out["latency_s"] = out["energy_mj"] = None
    return out


def old_firmware(predicted: dict, board) -> str:
    """Whose firmware the study priced: studies from before the emulator map (no "firmware" key) priced a real
    board with the published-firmware model, the only one it had."""
    if predicted.get("firmware"):
        return predicted["firmware"]
    return "microtl-dse" if board is not None and board.instructions_only else "paper"


# --- the re-pricing --------------------------------------------------------------------------------------------------

def rescore(folder: str | Path, board: str | None = None, calibration=None) -> dict:
    """Re-price, compare fronts, then write the JSON, the plot and the study attribute (all computed first)."""
    folder = Path(folder)
    study, spec = StudyFolder(folder).load()
    pr = pricing(board or spec.board, calibration)
    b = pr.board
    try:
        study_board = load_board(spec.board)
    except BoardSpecError:
        study_board = None
    objectives = [o.name for o in spec.objectives]
    # the board's memories are a limit whatever the study says: the rescoring board's
    constraints = [*board_constraints(b.ram_bytes, b.flash_bytes), *spec.user_constraints]
    kept = [m for m in CLOCKED if b.instructions_only]  # measures this board cannot price: the study's value stays

    rows: dict[int, dict] = {}
    old_firmwares: dict[str, int] = {}
    sources: dict[str, str] = {}
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if ATTR_CONFIG not in t.user_attrs:
            continue
        config = Configuration.from_dict(t.user_attrs[ATTR_CONFIG])
        acc = t.user_attrs.get(ATTR_ACCURACY, {})
        old = t.user_attrs.get(ATTR_PREDICTED, {})
        fw = old_firmware(old, study_board)
        old_firmwares[fw] = old_firmwares.get(fw, 0) + 1
        epochs = min(float(acc.get("epochs_mean") or config.epochs), config.epochs)
        try:
            p = price_trial(config, pr, epochs, spec.task.classes)
        except ValueError as exc:
            rows[t.number] = {"error": " ".join(str(exc).split())}
            continue
        except (TypeError, KeyError, AttributeError) as exc:
            if calibration is None:
                raise
            raise UserError(f"--calibration: the snapshot cannot price trial {t.number} "
                            f"({type(exc).__name__}: {exc})") from None
        if not sources:
            sources = {**p.sources, **{f"phase.{k}": v.source for k, v in p.phases.items() if v.source}}
        new = stored_prediction(p, not b.instructions_only)
        for m in kept:
            new[COSTS[m]] = old.get(COSTS[m])
        accuracy = acc.get("mean")
        old_violations = {k.split(":", 1)[1]: v for k, v in t.system_attrs.items() if k.startswith("constraints:")}
        new_violations = {}
        for c in constraints:
            value = measure_value(c.measure.name, accuracy, new)
            new_violations[c.key] = None if value is None else c.violation(value)
        rows[t.number] = {
            "accuracy": accuracy,
            "old": {"firmware": fw, "phases_included": old.get("phases_included"),
                    **{k: old.get(k) for k in COSTS.values()},
                    **{k: v for k, v in old.items() if k.startswith(("energy.", "time."))}},
            "new": new,
            "old_feasible": all(v <= 0 for v in old_violations.values()),
            "new_feasible": all(v is not None and v <= 0 for v in new_violations.values()),
            "violations": new_violations,
            "old_values": list(t.values),
        }
    ok = {n: r for n, r in rows.items() if "error" not in r and r["accuracy"] is not None}
    if not ok:
        raise UserError(f"{folder}: no complete trial could be re-priced"
                        + (f" ({next(iter(rows.values()))['error']})" if rows else ""))
    directions = [o.direction for o in spec.objectives]
    old_picks = pareto({n: tuple(r["old_values"]) for n, r in ok.items() if r["old_feasible"]}, directions)
    new_vals = {n: tuple(measure_value(m, r["accuracy"], r["new"]) for m in objectives) for n, r in ok.items()}
    new_picks = pareto({n: v for n, v in new_vals.items() if ok[n]["new_feasible"] and None not in v}, directions)
    costs = [m for m in objectives if m != "accuracy"]
    changes = {m: median_change([(r["old"][COSTS[m]], r["new"][COSTS[m]]) for r in ok.values()
                                 if r["old"][COSTS[m]] is not None and r["new"][COSTS[m]] is not None])
               for m in dict.fromkeys([*costs, "ram", "flash"]) if m not in kept}
    if any(m in CLOCKED for m in costs) and not kept:  # phase by phase, where both sides priced the phase
        for phase in PHASES:
            k = f"energy.{phase}_mj"
            pairs = [(r["old"][k], r["new"][k]) for r in ok.values() if r["old"].get(k) and r["new"].get(k)]
            if pairs:
                changes[f"energy, {phase} phase"] = median_change(pairs)
    shares = {}  # median share of each phase in the new energy: which figure carries the move
    for phase in PHASES:
        parts = [r["new"][f"energy.{phase}_mj"] / r["new"]["energy_mj"] for r in ok.values()
                 if r["new"].get(f"energy.{phase}_mj") is not None and r["new"].get("energy_mj")]
        if parts:
            shares[phase] = statistics.median(parts)
    stem = f"{b.name}-{pr.id}"
    result = {
        "study": spec.name, "board": b.name, "study_board": spec.board, "firmware": "microtl-dse",
        "calibration": {"board": pr.emulator, "sha256": pr.calibration.digest, "files": list(pr.calibration.files),
                        "runs": pr.calibration.runs, "snapshot": calibration is not None},
        "emulator_map": None if pr.emulator_map is None else {
            "how": pr.map_note, "phases": {p: {"cpi": v.cpi, "cpi_status": v.cpi_status, "power_w": v.power_w,
                                               "power_status": v.power_status}
                                           for p, v in pr.emulator_map.phases.items()},
            "platform": None if pr.emulator_map.platform is None else {
                "ram_bytes": pr.emulator_map.platform.ram_bytes, "flash_bytes": pr.emulator_map.platform.flash_bytes}},
        "labels": {"accuracy": "simulated (the study's own, unchanged)",
                   "costs": "predicted (old: the study's own predictions; new: this project's firmware model)",
                   "sources": sources, "not_repriced": {m: f"{b.name} has no clock: the study's values are kept"
                                                        for m in kept}},
        "old_firmware": old_firmwares, "objectives": objectives,
        "constraints": [f"{c.key}: {c.measure.name} <= {c.limit / 1024:g} KB" if c.key.startswith("board_")
                        else c.describe() for c in constraints],
        "old_picks": sorted(old_picks), "new_picks": sorted(new_picks),
        "left": sorted(old_picks - new_picks), "joined": sorted(new_picks - old_picks),
        "left_infeasible": sorted(n for n in old_picks - new_picks if not ok[n]["new_feasible"]),
        "became_infeasible": sorted(n for n, r in ok.items() if r["old_feasible"] and not r["new_feasible"]),
        "became_feasible": sorted(n for n, r in ok.items() if not r["old_feasible"] and r["new_feasible"]),
        "changes": changes, "energy_share": shares, "errors": {n: r["error"] for n, r in rows.items() if "error" in r},
        "trials": {str(n): {k: v for k, v in r.items() if k != "old_values"} for n, r in rows.items()},
    }
    result = json.loads(json.dumps(result))  # plain values, as stored
    panels = [m for m in costs if m not in kept] or ["ram"]
    fig = rescore_figure(spec, result, panels, constraints)
    key = f"rescored/{b.name}/{pr.id}"
    out = folder / "rescore"
    out.mkdir(exist_ok=True)
    png, js = out / f"{stem}.png", out / f"{stem}.json"
    write_text(js, json.dumps(result, indent=1) + "\n")
    save_figure(fig, png)
    study.set_user_attr(key, result)
    return {**result, "key": key, "plot": str(png), "json": str(js), "map_note": pr.map_note, "kept": kept}


# --- the command ---------------------------------------------------------------------------------------------------

def _pct(c: dict) -> str:
    return f"median {c['median']:+.1%} (range {c['min']:+.1%} .. {c['max']:+.1%}, {c['n']} trials)"


def summary(result: dict) -> str:
    """How the front moved, in a few lines (every cost figure is a prediction)."""
    cal = result["calibration"]
    where = (f"a calibration snapshot of {cal['board']}" if cal["snapshot"] else
             f"the current {cal['board']} firmware calibration")
    n = len(result["trials"]) - len(result["errors"])
    lines = [f"rescored {n} trials of study {result['study']!r} on {result['board']} with this project's firmware "
             f"model (\"microtl-dse\"): {where} (sha256 {cal['sha256'][:12]}, {cal['runs']} runs in "
             f"{', '.join(cal['files'])}); all cost figures are predicted"]
    if result.get("map_note"):
        lines.append(f"time and energy: predicted instructions x CPI / clock x phase power, {result['map_note']}")
    paper = result["old_firmware"].get("paper", 0)
    if paper:
        lines.append(f"note: {paper} trial(s) were priced with the published-firmware model (firmware \"paper\": the "
                     "op-count fit of the paper's Table III, the paper's CMSIS-NN firmware); they are rescored with "
                     "our firmware's model (the firmware dse validate builds and validations refine), so the move "
                     "includes the change of model, not only the refit")
    if result["board"] != result["study_board"]:
        lines.append(f"note: the study was priced on {result['study_board']}, rescored on {result['board']} (its "
                     "memories are the board limits here)")
    for m, why in result["labels"]["not_repriced"].items():
        lines.append(f"{m}: not re-priced ({why})")
    phases_old = sorted({r["old"]["phases_included"] or "-" for r in result["trials"].values() if "old" in r})
    phases_new = sorted({r["new"]["phases_included"] or "-" for r in result["trials"].values() if "new" in r})
    if phases_old != phases_new and any(m in result["objectives"] for m in CLOCKED):
        lines.append(f"phases in energy/latency: old {' | '.join(phases_old)}; new {' | '.join(phases_new)}")
    for m, c in result["changes"].items():
        if c:
            lines.append(f"predicted {m}, new / old - 1: {_pct(c)}")
    if result.get("energy_share") and result.get("emulator_map"):
        st = {p: v["cpi_status"] for p, v in result["emulator_map"]["phases"].items()}
        lines.append("new energy by phase (median share): " + ", ".join(
            f"{p} {v:.0%} (cycles {st[p]})" for p, v in result["energy_share"].items()))
    if result["errors"]:
        lines.append(f"{len(result['errors'])} trial(s) could not be priced: "
                     + "; ".join(f"#{k}: {v}" for k, v in list(result["errors"].items())[:3]))
    lines.append(f"feasible under {', '.join(result['constraints'])}: became infeasible "
                 f"{result['became_infeasible'] or 'none'}; became feasible {result['became_feasible'] or 'none'}")
    old, new = set(result["old_picks"]), set(result["new_picks"])
    lines.append(f"Pareto picks ({' / '.join(result['objectives'])}): {len(old)} -> {len(new)}; kept "
                 f"{len(old & new)}; left {result['left'] or 'none'}"
                 + (f" (infeasible now: {result['left_infeasible']})" if result["left_infeasible"] else "")
                 + f"; joined {result['joined'] or 'none'}")
    lines.append(f"stored under study attribute {result['key']!r}\nplot: {result['plot']}\ntable: {result['json']}")
    return "\n".join(lines)


def cmd_rescore(args) -> int:
    calibration = None
    if args.calibration:
        try:
            calibration = read_firmware_calibration(args.calibration)
        except FirmwareCalibrationError as exc:
            raise UserError(f"--calibration: {' '.join(str(exc).split())}") from None
        except AttributeError:  # JSON that is not an object
            raise UserError(f"--calibration: {args.calibration}: not a firmware calibration snapshot (not a JSON "
                            "object)") from None
    try:
        result = rescore(args.folder, args.board, calibration)
    except UserError as exc:  # name the snapshot in what it could not price
        if str(exc).startswith("--calibration:"):
            raise UserError(f"--calibration {args.calibration}:{str(exc)[len('--calibration:'):]}") from None
        raise
    print(json.dumps(result, indent=2) if args.json else summary(result))
    return 0
