"""Battery lifetime: how many days a battery lasts with on-device adaptation, and with the BLE alternative.

A day of the device: `inferences_per_hour x 24` inferences, `adaptations_per_month / DAYS_PER_MONTH` adaptation
events, and sleep for the rest of the day. Energies are at the board's supply voltage (the phase powers already
are); the battery holds capacity x battery voltage, drawn through an ideal converter; self-discharge is ignored.
- inference: one input through the frozen network and the head, priced as the *evaluation phase* of this project's
  firmware per input (its marginal cost: predicted with 2 test inputs minus with 1). The paper's firmware has no
  such phase: its lifetime is not priced.
- adaptation event (on device): the sum of the prediction's phases (collection of N samples, then training), so a
  mode whose phases differ (e.g. streaming, where they interleave) is priced by its own prediction unchanged.
- adaptation event (BLE alternative, as Edge-TL): upload the N raw int8 samples, download the int8 head
  (models.baselines.headquant.int8_bytes: weights and biases, 2 shift bytes per layer) at the board's radio facts.
- sleep: the board file's [sleep] current (or the deployment's) x supply voltage, for the day minus active time.
The predictor (`compare`) is pure; `lifetime_for` gathers its inputs from predictions.
"""
from __future__ import annotations

from dataclasses import dataclass

from cost_models.board import BoardSpec, load_board
from cost_models.deployment import Deployment
from cost_models.predict import predict
from cost_models.radio import ble_upload
from cost_models.workload import Workload, workload_from_config

DAY_S = 86_400.0
DAYS_PER_MONTH = 365.25 / 12
TERMS = ("sleep", "inference", "adaptation", "radio")  # the daily energy breakdown
ALTERNATIVES = ("on_device", "ble")


class LifetimeError(ValueError):
    """The lifetime cannot be priced (no power figures, no sleep current, an uncalibrated phase)."""


@dataclass(frozen=True)
class EventCost:
    """Time and energy of one event (an inference, one adaptation) and where they come from."""

    seconds: float
    energy_mj: float
    source: str = ""


@dataclass(frozen=True)
class Lifetime:
    """One alternative: mJ per day per term (TERMS), active seconds per day, battery mJ and days."""

    daily_mj: dict[str, float]
    active_s: float
    battery_mj: float

    @property
    def total_mj(self) -> float:
        return sum(self.daily_mj.values())

    @property
    def days(self) -> float:
        return self.battery_mj / self.total_mj


@dataclass(frozen=True)
class LifetimeComparison:
    on_device: Lifetime
    ble: Lifetime
    inference: EventCost
    adaptation: EventCost  # one on-device adaptation event
    upload: EventCost  # one BLE event: upload N raw samples, download the head
    sleep_w: float
    sources: dict[str, str]

    @property
    def gain_days(self) -> float:
        """Days on-device adaptation gains (> 0) or loses (< 0) against uploading."""
        return self.on_device.days - self.ble.days

    def to_dict(self) -> dict[str, float | str]:
        """Flat plain values (trial user attributes, CSV columns `lifetime.*`, JSON)."""
        out: dict[str, float | str] = {}
        for name, alt in (("on_device", self.on_device), ("ble", self.ble)):
            out[f"{name}_days"] = alt.days
            out.update({f"{name}.{t}_mj_per_day": alt.daily_mj[t] for t in TERMS})
            out[f"{name}.total_mj_per_day"] = alt.total_mj
            out[f"{name}.active_s_per_day"] = alt.active_s
        out["gain_days"] = self.gain_days
        out["inference_mj"], out["inference_s"] = self.inference.energy_mj, self.inference.seconds
        out["adaptation_mj"], out["adaptation_s"] = self.adaptation.energy_mj, self.adaptation.seconds
        out["upload_mj"], out["upload_s"] = self.upload.energy_mj, self.upload.seconds
        out["sleep_w"] = self.sleep_w
        out["battery_mj"] = self.on_device.battery_mj
        return out


def battery_mj(d: Deployment) -> float:
    """mAh x 3.6 = coulombs; x volts = joules."""
    return d.battery_mah * 3.6 * d.battery_v * 1e3


def day(d: Deployment, sleep_w: float, inference: EventCost, event: EventCost, term: str) -> Lifetime:
    """One alternative's day: its adaptation event's energy goes to `term` ("adaptation" or "radio")."""
    inferences = d.inferences_per_hour * 24
    events = d.adaptations_per_month / DAYS_PER_MONTH
    active = inferences * inference.seconds + events * event.seconds
    if active > DAY_S:
        raise LifetimeError(f"the deployment keeps the device busy {active:.0f} s a day (more than a day): lower "
                            "inferences_per_hour or adaptations_per_month")
    daily = dict.fromkeys(TERMS, 0.0)
    daily["sleep"] = sleep_w * (DAY_S - active) * 1e3
    daily["inference"] = inferences * inference.energy_mj
    daily[term] = events * event.energy_mj
    return Lifetime(daily, active, battery_mj(d))


def compare(d: Deployment, sleep_w: float, inference: EventCost, adaptation: EventCost, upload: EventCost,
            sources: dict[str, str] | None = None) -> LifetimeComparison:
    """The pure predictor: lifetime with on-device adaptation and with the BLE alternative."""
    return LifetimeComparison(day(d, sleep_w, inference, adaptation, "adaptation"),
                              day(d, sleep_w, inference, upload, "radio"), inference, adaptation, upload, sleep_w,
                              dict(sources or {}))


# --- gathering the inputs from the board and the cost model's predictions ---------------------------------------

def sleep_power_w(board: BoardSpec, d: Deployment) -> tuple[float, str]:
    """Sleep current (the deployment's, else the board file's) x the board's supply voltage, and its source."""
    if board.supply_v is None:
        raise LifetimeError(f"board {board.name} has no power figures (instructions only): no lifetime")
    if d.sleep_current_ua is not None:
        return d.sleep_current_ua * 1e-6 * board.supply_v, "deployment sleep_current_ua"
    if board.sleep_current_ua is None:
        raise LifetimeError(f"board file {board.path} has no [sleep] current_ua; add it (with its source) or give "
                            "the deployment's sleep_current_ua")
    return board.sleep_current_ua * 1e-6 * board.supply_v, f"board file {board.path.name} [sleep]: " \
                                                            f"{board.sources_of('sleep')}"


def adaptation_event(prediction) -> EventCost:
    """One on-device adaptation: every phase of the prediction (all must be priced)."""
    missing = [p for p in prediction.phases if p != "evaluation" and p not in prediction.phases_included]
    if missing or not prediction.phases_included:
        raise LifetimeError(f"the {', '.join(missing) or 'adaptation'} phase is not priced on {prediction.board} "
                            f"(firmware {prediction.firmware!r}): no lifetime")
    phases = [p for p in prediction.phases_included if p != "evaluation"]
    return EventCost(sum(prediction.phases[p].seconds for p in phases),
                     sum(prediction.phases[p].energy_mj for p in phases),
                     f"predicted phases {', '.join(phases)}")


def inference_event(one, two) -> EventCost:
    """One inference: the evaluation phase predicted with 2 test inputs minus with 1 (its per-input cost)."""
    a, b = one.phases.get("evaluation"), two.phases.get("evaluation")
    if a is None or b is None or a.seconds is None or b.seconds is None:
        raise LifetimeError(f"no evaluation-phase pricing on {one.board} (firmware {one.firmware!r}): the "
                            "inference energy is priced by this project's firmware model only")
    return EventCost(b.seconds - a.seconds, b.energy_mj - a.energy_mj,
                     "predicted evaluation phase per input (frozen network + head)")


def head_bytes(w: Workload) -> int:
    """The int8 head as Edge-TL downloads it: weights and biases (1 byte each), 2 shift bytes per layer."""
    return w.head_params + 2 * len(w.head)


def upload_event(w: Workload, board: BoardSpec) -> EventCost:
    """The BLE alternative's adaptation: N raw int8 samples up, the int8 head down (cost_models.radio)."""
    if board.radio_payload_bps is None:
        raise LifetimeError(f"board {board.name} has no [radio] facts: the BLE alternative is not priced")
    up = ble_upload(w.samples, w.input_elements, board)
    down = ble_upload(head_bytes(w), 1, board)
    return EventCost(up.seconds + down.seconds, up.energy_mj + down.energy_mj,
                     f"{up.bytes} B up + {down.bytes} B down at {board.radio_payload_bps} bit/s, "
                     f"{board.radio_current_ma} mA (board file [radio])")


def lifetime_for(config, prediction, deployment: Deployment, board: BoardSpec | str, *, classes: int | None = None,
                 firmware: str | None = None) -> LifetimeComparison:
    """Gather the predictor's inputs for `config` (whose adaptation `prediction` prices) and compare."""

    board = board if isinstance(board, BoardSpec) else load_board(board)
    sleep_w, sleep_source = sleep_power_w(board, deployment)
    adaptation = adaptation_event(prediction)
    one, two = (predict(config, board, classes=classes, firmware=firmware, test_inputs=t) for t in (1, 2))
    inference = inference_event(one, two)
    upload = upload_event(workload_from_config(config, classes), board)
    return compare(deployment, sleep_w, inference, adaptation, upload,
                   {"sleep": sleep_source, "inference": inference.source, "adaptation": adaptation.source,
                    "radio": upload.source})
