"""`dse calibrate`: measure our firmware on a board over a grid of shapes, import validation records, refit the
firmware cost models and report their cross-validated error.

    dse calibrate --board qemu-an386                 run (or resume) the campaign, then fit
    dse calibrate --board qemu-an386 --add DIR/validations --refit    import validation records, refit
    dse calibrate --board qemu-an386 --report        leave-one-shape-out error table and residual plots
    --out FILE                                       also write the fitted calibration as a versioned JSON snapshot
    dse calibrate --board nrf52840dk --refit         refit the emulator map (qemu-an386 instructions -> nRF52840
                                                     time and energy, from Table III) and rewrite its file
    dse calibrate --board nrf52840dk --add DIR       import the DK's validation records (cycles, energy), refit the map
    dse calibrate --board nrf52840dk --report        print the map: which figure comes from which source, and its
                                                     cross-validated cycles and energy error (residual plots)

Records are written to the user's calibration folder, never into the installed package (cost_models.user_data:
--calibration-dir, else MICROTL_CALIBRATION_DIR, else the platform's user data folder), as <board>/campaign.csv (the
campaign, resumed from the shipped one) and <board>/validations.csv (imported records; the real boards':
firmware_runs/validations.csv, and their refitted emulator_map.json); the cost models read them on top of the
shipped defaults in cost_models/calibration/<board>/ and refit whenever they are loaded.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from datetime import date
from pathlib import Path

from cost_models.atomic import replacing
from cost_models.board import BoardSpecError, list_boards, load_board
from cost_models.microtl_dse.emulator_map import (
    RUNS_DIR,
    TABLE3_SOURCE,
    EmulatorMapError,
    PlatformDelta,
    build_map,
    clear_map_cache,
    fit_set,
    load_emulator_map,
    map_or_none,
    map_path,
    user_map_path,
    write_map,
)
from cost_models.microtl_dse.emulator_map import report as map_report
from cost_models.microtl_dse.fit import (
    COSTS,
    FirmwareCalibrationError,
    clear_firmware_cache,
    load_firmware_calibration,
    record_files,
    save_firmware_calibration,
)
from cost_models.microtl_dse.fit_error import (
    CostError,
    cross_validate,
    error_table,
    in_sample,
    residual_plot,
    summarize,
)
from cost_models.microtl_dse.map_error import costs_of, cross_validate_map, timed_runs_of
from cost_models.microtl_dse.runs import RunRecordError, load_runs
from cost_models.paper.calibration import CalibrationError
from cost_models.paper.records import RecordError
from cost_models.user_data import ENV
from dse.console import say
from dse.errors import UserError
from dse.parser import FIRMWARE_BOARDS, MAP_BOARDS
from dse.paths import check_output_file, check_output_folder
from firmware.boards import get_board
from firmware.build import BuildError, build, toolchain_version
from firmware.calibrate import Grid, rows_from_validation, run_campaign, timed_rows_from_validation
from firmware.codegen import generate
from firmware.records import read_record
from firmware.run_records import append_rows, measured_keys
from vocabulary.configuration import Configuration
from vocabulary.phases import PHASES

CAMPAIGN_FILE, VALIDATIONS_FILE = "campaign.csv", "validations.csv"
# Built for both platforms to measure what the nRF52840 platform layer adds to the emulator build (digits: no
# download needed; two cuts so that a size depending on the configuration would show).
PLATFORM_PROBES = (("digits_cnn", "conv2", 8, 60), ("digits_cnn", "fc1", 32, 120))
PLATFORM_ALIGNMENT_SLACK = 16  # bytes: section alignment padding (8-byte .bss/.data alignment on both sides)


def import_validations(folders: list[str], out_csv: Path, rows_of=None) -> tuple[int, int]:
    """Rows of every ok validation record in the folders (`rows_of`: firmware.calibrate.rows_from_validation, or
    timed_rows_from_validation for a real board), appended once (by key); returns (added, skipped). Every file is
    read before anything is written: a bad one stops the import with nothing added."""
    rows_of = rows_of or rows_from_validation
    records = []
    for folder in folders:
        path = Path(folder)
        if not path.is_dir():
            raise UserError(f"--add {folder}: no such folder")
        files = sorted(path.glob("*.json"))
        if not files:
            raise UserError(f"--add {folder}: no validation records (*.json)")
        for f in files:
            try:
                records.append(read_record(f))
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(f"{f}: not a validation record ({' '.join(str(exc).split())})") from None
    done = measured_keys(out_csv)
    new: list[list[dict]] = []
    for record in records:  # every record converted before the first row is written
        try:
            rows = rows_of(record, source=f"validation:{record.study}/trial-{record.trial}")
        except ValueError as exc:  # a configuration the registries no longer know
            raise UserError(f"validation record of trial {record.trial} ({record.study}): "
                            f"{' '.join(str(exc).split())}") from None
        if rows and rows[0]["key"] not in done:
            new.append(rows)
            done.add(rows[0]["key"])
    for rows in new:
        append_rows(out_csv, rows)
    return len(new), len(records) - len(new)


def _check_paths(args) -> None:
    """Folders and the snapshot file the command will write: usable, before any campaign or import."""
    for flag in ("records", "plots", "work"):
        if getattr(args, flag, None):
            check_output_folder(getattr(args, flag), f"--{flag}")
    if args.out:
        check_output_file(args.out, "--out")


def cmd_calibrate(args) -> int:
    _check_paths(args)
    if args.calibration_dir:  # for everything this command loads, fits and writes
        os.environ[ENV] = str(Path(args.calibration_dir).resolve())
    if args.board in MAP_BOARDS:
        return _emulator_map(args)
    if args.board not in FIRMWARE_BOARDS:
        raise UserError(f"--board {args.board}: the firmware campaign runs on {', '.join(FIRMWARE_BOARDS)}; the "
                        f"emulator map is fitted for {', '.join(MAP_BOARDS)}")
    try:
        board = load_board(args.board)
    except BoardSpecError as exc:
        raise UserError(str(exc)) from None
    records = Path(args.records) if args.records else board.user_calibration_dir  # written here
    read = records if args.records else board.calibration_dirs  # fitted from these
    if args.add:
        added, skipped = import_validations(args.add, records / VALIDATIONS_FILE)
        say(f"calibrate: imported {added} validation record(s) into {records / VALIDATIONS_FILE} "
            f"({skipped} failed, without instruction counts, or already there)")
    if not args.refit and not args.add and not args.report:
        _campaign(args, records, None if args.records else board.calibration_dir)
    cal = _fit(args.board, read)
    if args.out:
        save_firmware_calibration(cal, args.out)
        say(f"calibrate: wrote {args.out}")
    plots = Path(args.plots or f"runs/calibration-{args.board}")
    if args.json:
        out = {"board": args.board, "calibration": cal.to_dict()}
        if args.report:
            out["report"] = report_data(args.board, read, plots, not args.quiet)
        print(json.dumps(out, indent=2, default=str))
    else:
        print(fit_summary(cal))
        if args.report:
            print(report(args.board, read, plots, not args.quiet))
    for line in stale_maps(args.board, read):
        say(line)
    return 0


def stale_maps(emulator: str, records: Path | tuple[Path, ...]) -> list[str]:
    """The real boards' emulator maps fitted on this emulator's records that no longer match them, with how to
    refit. Not refitted here: that rewrites another board's shipped calibration file and rebuilds firmware to
    measure the platform layer (about 30 s); `dse rescore` refits the map in memory meanwhile."""
    clear_map_cache()
    lines = []
    for name in list_boards():
        try:
            board = load_board(name)
            m = map_or_none(board)
        except (EmulatorMapError, ValueError) as exc:
            lines.append(f"calibrate: {name}: emulator map unusable ({' '.join(str(exc).split())})")
            continue
        if m is None or m.emulator != emulator:
            continue
        default = load_board(emulator).calibration_dirs
        where = "" if records == default or Path(records).resolve() in default else \
            f" (it follows the records in {', '.join(map(str, default))}, not {records})"
        if m.stale:
            lines.append(f"calibrate: the {name} emulator map {map_path(board)} is stale{where}: {'; '.join(m.stale)}; "
                         f"{name} time and energy keep its old CPI until `dse calibrate --board {name} --refit` "
                         "(about 30 s); `dse rescore` refits it in memory")
        else:
            lines.append(f"calibrate: the {name} emulator map is up to date with the {emulator} records{where}")
    return lines


def _campaign(args, records: Path, shipped: Path | None) -> None:
    """Run or resume the campaign into records/campaign.csv (a user's folder starts from the shipped campaign, so
    that only the missing runs are measured)."""
    fw_board = get_board(args.board)
    ok, why = fw_board.available()
    if not ok:
        raise UserError(f"board {args.board} is not available: {why}")
    records.mkdir(parents=True, exist_ok=True)
    if shipped is not None and (shipped / CAMPAIGN_FILE).is_file() and not (records / CAMPAIGN_FILE).exists():
        shutil.copyfile(shipped / CAMPAIGN_FILE, records / CAMPAIGN_FILE)
    with tempfile.TemporaryDirectory(prefix="dse-calibrate-") as tmp:
        ran, skipped, failures = run_campaign(Grid().configurations(), records / CAMPAIGN_FILE, args.work or tmp,
                                              fw_board, progress=not args.quiet, say=say)
    say(f"calibrate: {ran} run(s) measured now, {skipped} already in {records / CAMPAIGN_FILE}, "
        f"{len(failures)} failed")


def _fit(board: str, records: Path | tuple[Path, ...]):
    clear_firmware_cache()
    try:
        return load_firmware_calibration(board, records)
    except (FirmwareCalibrationError, RunRecordError) as exc:
        raise UserError(" ".join(str(exc).split())) from None


def fit_summary(cal) -> str:
    lines = [f"firmware calibration of {cal.board} (format {cal.version}; {cal.runs} runs in {', '.join(cal.files)}; "
             f"sha256 {cal.digest[:12]})", "instructions per count (fitted, non-negative):"]
    for phase, coef in cal.instructions.items():
        fitted = ", ".join(f"{k} {v:.4g}" for k, v in coef.items() if cal.status[phase][k] == "fitted" and v)
        lines.append(f"  {phase:11s} {fitted or 'not calibrated'}")
    if cal.cycles_estimate:
        lines.append(f"static Cortex-M4 cycle estimate per count (fitted the same way on {cal.estimate_runs} runs' "
                     f"estimates: {cal.estimate_source or 'estimate'}):")
        for phase, coef in cal.cycles_estimate.items():
            fitted = ", ".join(f"{k} {v:.4g}" for k, v in coef.items()
                               if cal.cycles_estimate_status[phase][k] == "fitted" and v)
            cpi = cal.estimate_cpi.get(phase)
            span = "" if not cpi else f"  (estimated CPI of the runs {cpi[0]:.3f}-{cpi[2]:.3f}, mean {cpi[1]:.3f})"
            lines.append(f"  {phase:11s} {fitted or 'not calibrated'}{span}")
    else:
        lines.append("static Cortex-M4 cycle estimate: no estimate records (rerun the campaign: qemu-an386 runs "
                     "record it per phase)")
    for metric in ("ram", "flash"):
        lines.append(f"{metric} group scales (constant groups: bytes): "
                     + ", ".join(f"{g} {s:.4g}" for g, s in getattr(cal, metric).items()))
    lines += [f"note: {n}" for n in cal.notes]
    return "\n".join(lines)


def report_data(board: str, records: Path | tuple[Path, ...], plots: Path, progress: bool) -> dict:
    """Leave-one-shape-out and in-sample errors per cost (CostError records); residual plots into `plots`."""
    runs = [r for p in record_files(records) for r in load_runs(p)]
    present = {r.cost for r in runs}
    costs = tuple(c for c in COSTS if c in present)  # the cycle estimate only where the records have it
    tell = (lambda i, n: say(f"calibrate: cross-validation {i}/{n} shapes")) if progress else None
    cv = cross_validate(runs, board, tell)
    fit = in_sample(runs, board)
    written = [str(residual_plot(pts, plots / name, f"{board}: {name[10:-4]} relative errors", costs))
               for name, pts in (("residuals-cv.png", cv), ("residuals-fit.png", fit))]
    return {"board": board, "shapes": len({r.shape for r in runs}), "runs": len({r.key for r in runs}),
            "cross_validation": [asdict(e) for e in summarize(cv, costs)],
            "in_sample": [asdict(e) for e in summarize(fit, costs)], "plots": written}


def report(board: str, records: Path | tuple[Path, ...], plots: Path, progress: bool) -> str:
    """Leave-one-shape-out and in-sample error tables; residual plots into `plots`."""
    d = report_data(board, records, plots, progress)
    out = [error_table([CostError(**e) for e in d["cross_validation"]],
                       f"leave-one-shape-out cross-validation ({d['shapes']} shapes, {d['runs']} runs, measured on "
                       f"{board}; cycles_estimate: the static Cortex-M4 estimate, not a measurement):"),
           error_table([CostError(**e) for e in d["in_sample"]], "in-sample (all runs fitted):")]
    out += [f"plot: {p}" for p in d["plots"]]
    out.append(sources_text(board))
    return "\n".join(out)


def sources_text(emulator: str) -> str:
    """Which figure comes from which source, here and on the real boards this emulator's models price."""
    lines = [f"sources: instructions per phase, peak RAM and flash of our firmware are measured on {emulator} (exact "
             "retired-instruction counts of the insncount plugin; ELF sizes + stack high-water) and predicted by the "
             "models above; no clock, so no time or energy here"]
    for name in list_boards():
        board = load_board(name)
        try:
            m = map_or_none(board)
        except EmulatorMapError as exc:
            lines.append(f"  {name}: emulator map unusable ({' '.join(str(exc).split())})")
            continue
        if m is None or m.emulator != emulator:
            continue
        t = m.phases["training"]
        how = {"estimated": "the static cycle estimate predicted above", "assumed": "CPI assumed equal to training's",
               "fitted": "CPI fitted on DK-timed runs of our firmware"}
        others = "; ".join(f"{p}: {how.get(v.cpi_status, v.cpi_status)}" for p, v in m.phases.items()
                           if p != "training")
        lines.append(f"  {name}: time = cycles / {m.clock_hz / 1e6:g} MHz: training = these predicted instructions x "
                     f"CPI {t.cpi:.3f} ({t.cpi_status}: "
                     f"{'Table III training time' if 'Table III' in t.cpi_source else 'DK-timed runs'}); "
                     f"{others}; energy = time x "
                     f"phase power (training {t.power_w * 1e3:.2f} mW from Table III energy / time; collection "
                     f"{m.phases['collection'].power_w * 1e3:.2f} mW: the board file's published current); RAM/flash "
                     f"= these models + the measured platform layer. Details: dse calibrate --board {name} --report")
    return "\n".join(lines)


# --- the real board: the emulator map -------------------------------------------------------------------------------

def measure_platform_delta(probes=PLATFORM_PROBES):
    """Build the same generated sources' deployed image (what studies price) for the emulator ("qemu") and the
    nRF52840 platform; the static RAM and flash the nRF52840 build adds (the same for every probe, or an error: then
    it is not a platform constant). The validation harness's platform code (semihosting reads, the RTT down
    buffer) is not part of it."""
    deltas, names = [], []
    with tempfile.TemporaryDirectory(prefix="dse-platform-") as tmp:
        for i, (model, cut, hidden, samples) in enumerate(probes):
            config = Configuration(task="digits", model=model, cut=cut, hidden=hidden, samples=samples, epochs=2)
            try:
                sources = generate(config, f"{tmp}/{i}/gen")
                qemu = build(sources, "cortex-m4", f"{tmp}/{i}/qemu", platform="qemu", image="deployed")
                nrf = build(sources, "cortex-m4", f"{tmp}/{i}/nrf", platform="nrf52840", image="deployed")
            except BuildError as exc:
                raise UserError(f"measuring the nRF52840 platform layer: {' '.join(str(exc).split())}") from None
            d = (nrf.static_ram_bytes - qemu.static_ram_bytes, nrf.flash_bytes - qemu.flash_bytes)
            deltas.append(d)
            names.append(f"digits/{model}/{cut}/h{hidden}/n{samples}: {d[0]:+d} B RAM, {d[1]:+d} B flash")
        # section alignment moves a few bytes between configurations; more would not be a platform constant
        for k, what in ((0, "RAM"), (1, "flash")):
            values = [d[k] for d in deltas]
            if max(values) - min(values) > PLATFORM_ALIGNMENT_SLACK:
                raise UserError(f"the nRF52840 build adds {min(values)} to {max(values)} B of {what} depending on "
                                f"the configuration ({'; '.join(names)}): not a platform constant")
        ram, flash = max(d[0] for d in deltas), max(d[1] for d in deltas)  # the larger: a bound, not an average
        return PlatformDelta(ram, flash, tuple(names), toolchain_version("cortex-m4"), date.today().isoformat())


def _emulator_map(args) -> int:
    if args.records or args.work:
        raise UserError(f"--board {args.board}: only --add, --refit, --report, --plots and --out apply to the "
                        "emulator map")
    board = load_board(args.board)
    try:
        if args.add:
            return _add_timed_runs(args, board)
        if args.refit:
            say(f"calibrate: measuring the {args.board} platform layer (building 2 configurations for both platforms)")
            fitted = build_map(board, platform=measure_platform_delta())
            path = write_map(fitted, args.out or user_map_path(board))
            clear_map_cache()
            say(f"calibrate: wrote {path}")
            m = load_emulator_map(board) if not args.out else fitted
        elif args.out:
            raise UserError("--out: give --refit too (the emulator map is written when it is fitted)")
        else:
            m = load_emulator_map(board)
    except (EmulatorMapError, CalibrationError, FirmwareCalibrationError, RecordError, RunRecordError) as exc:
        raise UserError(" ".join(str(exc).split())) from None
    _print_map(args, m)
    return 0


def _print_map(args, m) -> None:
    """The emulator map (and with --report its cross-validated error) as text or JSON."""
    plots = Path(args.plots or f"runs/calibration-{m.board}")
    if args.json:
        out = {"board": m.board, "emulator_map": m.to_dict()}
        if args.report:
            out["report"] = map_error_data(m, plots)
        print(json.dumps(out, indent=2, default=str))
        return
    print(map_report(m))
    if args.report:
        print(map_error_report(m, plots))


def _add_timed_runs(args, board) -> int:
    """Import the board's validation records (cycles, energy) into its own-run records and refit the map; the
    platform layer is kept from the current map unless --refit asks to measure it again. If the refit fails, the
    records file is restored: the calibration set is never left with rows the map cannot use."""
    out_csv = board.user_calibration_dir / RUNS_DIR / VALIDATIONS_FILE  # never into the package
    before = out_csv.read_bytes() if out_csv.exists() else None
    added, skipped = import_validations(args.add, out_csv,
                                        lambda record, source: timed_rows_from_validation(record, source)
                                        if record.board == board.name else [])
    say(f"calibrate: imported {added} {board.name} validation record(s) into {out_csv} ({skipped} failed, of "
        f"another board, without cycles, or already there)")
    try:
        current = map_or_none(board)
        if args.refit or current is None or current.platform is None:
            say(f"calibrate: measuring the {board.name} platform layer (building 2 configurations for both "
                "platforms)")
            platform = measure_platform_delta()
        else:
            platform = current.platform
        fitted = build_map(board, platform=platform)
    except BaseException:
        if before is None:
            out_csv.unlink(missing_ok=True)
        else:
            with replacing(out_csv) as tmp:
                tmp.write_bytes(before)
        say(f"calibrate: {out_csv} restored (the map could not be refitted with the new records)")
        raise
    path = write_map(fitted, args.out or user_map_path(board))
    clear_map_cache()
    say(f"calibrate: wrote {path}")
    _print_map(args, load_emulator_map(board) if not args.out else fitted)
    return 0


def map_error_data(m, plots: Path) -> dict:
    """Cross-validated error of the map's cycles and energy per hold-out (CostError records); plots."""
    runs = timed_runs_of(m)
    out = {}
    for hold_out in ("shape", "run"):
        pts = cross_validate_map(runs, m.clock_hz, hold_out)
        path = residual_plot(pts, plots / f"residuals-map-{hold_out}.png",
                             f"{m.board}: timed runs, held out by {hold_out}", costs_of(pts))
        out[f"leave_one_{hold_out}_out"] = {"errors": [asdict(e) for e in summarize(pts, costs_of(pts))],
                                            "plot": str(path)}
    return out


def map_error_report(m, plots: Path) -> str:
    """Cross-validated error of the map's cycles and energy (leave one shape out, leave one run out); plots."""
    runs = timed_runs_of(m)
    fitted = {phase: fit_set(runs, phase) for phase in PHASES}
    n = sum(len(v) for v in fitted.values())
    table3 = sum(1 for v in fitted.values() for r in v if r.source == TABLE3_SOURCE)
    where = (f"{table3} Table III runs, timed on the real board by the paper" if table3 else "") + \
            (", " if table3 and n > table3 else "") + \
            (f"{n - table3} runs of our firmware timed on the board" if n > table3 else "")
    out = []
    for hold_out, what in (("shape", "leave one shape out (a Table III task's series, or one head shape of ours; "
                                     "CPI and power fitted on the other shapes)"),
                           ("run", "leave one run out")):
        pts = cross_validate_map(runs, m.clock_hz, hold_out)
        costs = costs_of(pts)
        out.append(error_table(summarize(pts, costs), f"{m.board} cycles and energy per phase, {what} ({where}; "
                                                      "flagged runs left out):"))
        path = residual_plot(pts, plots / f"residuals-map-{hold_out}.png",
                             f"{m.board}: timed runs, held out by {hold_out}", costs)
        out.append(f"plot: {path}")
    untimed = [p for p in PHASES if not fitted[p]]
    if untimed:
        how = {p: "static cycle estimate" if m.phases[p].estimated else "CPI assumed" for p in untimed}
        out.append(f"note: {' and '.join(f'{p} ({how[p]})' for p in untimed)}: no timed run on this board; priced "
                   "as above with the board file's power, so no error against the board can be measured for them")
    return "\n".join(out)
