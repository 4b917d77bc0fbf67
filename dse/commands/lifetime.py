"""Battery lifetime in `dse predict`: its deployment options and the breakdown text of both alternatives. Kept
apart from dse/reports/lifetime.py (summary and plot, pandas): `dse predict` loads no plotting library. Its options
are dse/parser.py's.
Every figure is a prediction (cost_models.lifetime) and is labelled so."""
from __future__ import annotations

import tomllib
from pathlib import Path

from cost_models.deployment import Deployment, DeploymentError, deployment_from_table
from cost_models.lifetime import TERMS
from dse.errors import UserError
from dse.parser import DEPLOYMENT_FLAGS as FLAGS
from dse.reports.tables import text_table

ALT_LABELS = {"on_device": "on-device adaptation", "ble": "BLE upload (Edge-TL)"}


# --- dse predict ------------------------------------------------------------------------------------------------

def deployment_from_args(args) -> Deployment | None:
    """None when no deployment option is given; otherwise the checked deployment (UserError naming the flag or
    the file and key)."""
    flags = {k: getattr(args, f"dep_{k}") for k in FLAGS if getattr(args, f"dep_{k}", None) is not None}
    if args.deployment is None and not flags:
        return None
    table: dict = {}
    if args.deployment is not None:
        path = Path(args.deployment)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read the deployment file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML: {exc}") from None
        if "deployment" not in data:
            raise UserError(f"{path}: missing section [deployment]")
        table = data["deployment"]
        if isinstance(table, dict):
            table = {**table, **flags}
    else:
        table = flags
    try:
        return deployment_from_table(table)
    except DeploymentError as exc:
        message = str(exc)[len(exc.key) + 2:]
        if exc.key in flags:
            raise UserError(f"{FLAGS[exc.key]}: {message}") from None
        if args.deployment is None:
            raise UserError(f"{FLAGS.get(exc.key, exc.key)}: {message} (give every deployment flag, or "
                            f"--deployment FILE)") from None
        raise UserError(f"{args.deployment}: deployment.{exc.key}: {message}") from None


def breakdown_text(c, d: Deployment) -> str:
    """The daily energy breakdown and lifetime of both alternatives, for the terminal."""
    headers = ["alternative", *[f"{t} (mJ/day)" for t in TERMS], "total (mJ/day)", "lifetime (days)"]
    rows = [[ALT_LABELS[name], *[f"{alt.daily_mj[t]:.4g}" for t in TERMS], f"{alt.total_mj:.4g}", f"{alt.days:.1f}"]
            for name, alt in (("on_device", c.on_device), ("ble", c.ble))]
    verdict = "gains" if c.gain_days >= 0 else "loses"
    lines = [
        f"Battery lifetime (predicted): {d.battery_mah:g} mAh at {d.battery_v:g} V, {d.inferences_per_hour:g} "
        f"inferences/hour, {d.adaptations_per_month:g} adaptations/month",
        text_table(headers, rows, indent="  "),
        f"  on-device adaptation {verdict} {abs(c.gain_days):.1f} days against uploading the samples over BLE",
        f"  per event: inference {c.inference.energy_mj:.4g} mJ, on-device adaptation {c.adaptation.energy_mj:.4g} "
        f"mJ, BLE upload + head download {c.upload.energy_mj:.4g} mJ; sleep {c.sleep_w * 1e6:.3g} uW",
        *[f"  {term}: {source}" for term, source in c.sources.items()],
    ]
    return "\n".join(lines)
