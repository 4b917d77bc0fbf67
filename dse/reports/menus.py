"""Terminal views of the building blocks: the model zoo, a model's cut-point menu with its head (the way the
paper's Table I lists them), and the predicted cost breakdown of one configuration."""
from __future__ import annotations

import textwrap

from dse.reports.modes import sample_latency_s
from dse.reports.tables import shape, sig, text_table, thousands
from models.arena import arena_bytes
from models.zoo import ModelSpec, head_layers, list_models

FLOAT32_BYTES = 4


def _wrap(text: str, width: int | None, indent: str = "") -> list[str]:
    """A prose line, wrapped to the terminal width (as is without one)."""
    if width is None:
        return [text]
    return textwrap.wrap(text, max(20, width), subsequent_indent=indent) or [""]


def zoo_listing(width: int | None = None) -> str:
    rows = [[m.name, shape(m.input_shape), ", ".join(m.cut_points()), m.description] for m in list_models()]
    return text_table(["model", "input shape", "cut points", "description"], rows, width=width)


def zoo_json() -> list[dict]:
    return [{"model": m.name, "input_shape": list(m.input_shape), "cut_points": list(m.cut_points()),
             "description": m.description} for m in list_models()]


def cut_point_menu(model: ModelSpec, cut: str | None = None, hidden: int = 32, classes: int = 3,
                   width: int | None = None) -> str:
    """Every layer (a cut point, except the input) with its int8 output and the frozen arena our firmware declares
    when cut there (the liveness plan: activations up to the cut, fused conv -> pool bands, kernel scratch); then
    the head trained at `cut`."""
    cut_layer = model.check_cut(cut) if cut is not None else model.layers[-1]
    rows = [[layer.name, layer.kind, shape(layer.out_shape), layer.dtype, thousands(layer.bytes),
             thousands(layer.weights), thousands(layer.macs),
             "" if layer.kind == "input" else thousands(arena_bytes(model.layers_up_to(layer.name)))]
            for layer in model.layers]
    lines = _wrap(f"{model.name}: {model.description}", width)
    if model.paper_table:
        lines.append(f"shapes as in {model.paper_table}")
    lines += ["", text_table(["layer", "kind", "output shape", "dtype", "bytes", "weights", "MACs", "arena B"], rows,
                             width=width)]
    lines += _wrap("arena B: the frozen layers' activation arena of our firmware when cut at the layer (liveness "
                   "plan)", width) + [""]
    lines += _wrap(f"head at cut {cut_layer.name} (feature: {thousands(cut_layer.elements)} values, "
                   f"{thousands(cut_layer.bytes)} bytes), hidden {hidden}, {classes} classes; "
                   "float32 weights, biases not counted:", width)
    head = head_layers(cut_layer.elements, hidden, classes)
    rows = [[f"head.fc{i}", "FC", shape(io), thousands(io[0] * io[1] * FLOAT32_BYTES)] for i, io in enumerate(head, 1)]
    lines.append(text_table(["layer", "kind", "weight shape", "weight bytes"], rows, width=width))
    return "\n".join(lines)


def cut_point_json(model: ModelSpec, cut: str | None = None, hidden: int = 32, classes: int = 3) -> dict:
    """The cut-point menu as plain data: layers with their int8 output, the head at the chosen cut."""
    cut_layer = model.check_cut(cut) if cut is not None else model.layers[-1]
    return {
        "model": model.name, "description": model.description, "paper_table": model.paper_table,
        "layers": [{"name": layer.name, "kind": layer.kind, "output_shape": list(layer.out_shape),
                    "dtype": layer.dtype, "bytes": layer.bytes, "weights": layer.weights, "macs": layer.macs}
                   for layer in model.layers],
        "head": {"cut": cut_layer.name, "feature_values": cut_layer.elements, "feature_bytes": cut_layer.bytes,
                 "hidden": hidden, "classes": classes,
                 "layers": [{"name": f"head.fc{i}", "weight_shape": list(io),
                             "weight_bytes": io[0] * io[1] * FLOAT32_BYTES}
                            for i, io in enumerate(head_layers(cut_layer.elements, hidden, classes), 1)]},
    }


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f}"


def cost_breakdown(prediction, config, board: str, classes: int, width: int | None = None) -> str:
    """The predicted cost of one configuration: RAM and flash terms, totals, time, energy, and BLE upload."""
    flat = prediction.to_dict()
    training = (f"{config.epochs} epochs, batch {config.batch}" if not getattr(config, "streaming", False) else
                f"streaming (one batch-1 step per sample as it is collected, replay ring {config.replay})")
    lines = _wrap(f"predicted cost on {board}: {config.model} cut {config.cut}, hidden {config.hidden}, "
                  f"{config.samples} samples, {training}, task {config.task} ({classes} classes)", width)
    firmware = getattr(prediction, "firmware", "")
    if firmware:
        lines.append("firmware priced: " + ("this project's (microtl-dse)" if firmware == "microtl-dse"
                                            else "the paper's published firmware (its Table III fit)"))
    lines.append("")
    rows = [[f"ram.{k}", thousands(v), _kb(v)] for k, v in prediction.ram.items()]
    rows.append(["ram_total", thousands(prediction.ram_total), _kb(prediction.ram_total)])
    rows += [[f"flash.{k}", thousands(v), _kb(v)] for k, v in prediction.flash.items()]
    rows.append(["flash_total", thousands(prediction.flash_total), _kb(prediction.flash_total)])
    lines.append(text_table(["predicted memory", "bytes", "KB"], rows, width=width))
    fits = f"fits RAM: {'yes' if prediction.fits_ram else 'NO'}, fits flash: {'yes' if prediction.fits_flash else 'NO'}"
    lines += [fits, ""]
    rows = [["latency_s", sig(prediction.latency_s)], ["energy_mj", sig(prediction.energy_mj)]]
    per_sample = sample_latency_s({**{f"predicted.{k}": v for k, v in flat.items()}, "samples": config.samples,
                                   "mode": getattr(config, "mode", "stored")})
    if per_sample is not None:  # streaming: what one collected sample costs (collection + its training steps)
        rows.append(["sample_latency_s (collection + training per sample)", sig(per_sample)])
    for key, value in flat.items():
        if key.startswith(("cycles.", "time.", "energy.")) and isinstance(value, (int, float)):
            rows.append([key, thousands(value) if key.startswith("cycles.") else sig(value)])
    lines.append(text_table(["predicted time and energy", "value"], rows, width=width))
    phases = list(getattr(prediction, "phases_included", []) or [])
    if phases:
        lines.append(f"phases included: {', '.join(phases)}")
        for phase in phases:  # which figure comes from where, per phase
            source = prediction.phases[phase].source
            if source:
                lines += _wrap(f"  {phase}: {source}", width)
    ble = [[k, sig(v) if isinstance(v, float) else thousands(v) if isinstance(v, int) else str(v)]
           for k, v in flat.items() if k.startswith("ble.")]
    if ble:
        lines += ["", text_table(["alternative: upload the samples over BLE", "value"], ble, width=width)]
    notes = list(getattr(prediction, "notes", []) or [])
    if notes:
        lines += ["", "notes:", *[line for n in notes for line in _wrap(f"- {n}", width, "  ")]]
    return "\n".join(lines)
