"""The workload: what a configuration asks the device to hold and compute, as plain counts.

Both a `Configuration` (to predict) and a measurement record (to calibrate) are reduced to a `Workload`, so the
predictors price both through the same code. Only the pure-Python parts of `models` are imported here.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from vocabulary.configuration import Configuration
from models.tasks import get_task
from models.zoo import LayerSpec, get_model, head_layers

# Bias storage width per quantization scheme: CMSIS-NN's legacy q7 kernels take q7_t (int8) biases,
# the s8 kernels int32 biases.
BIAS_BYTES = {"q7": 1, "s8": 4}


@dataclass(frozen=True)
class Workload:
    model: str
    cut: str
    layers: tuple[LayerSpec, ...]  # frozen layers evaluated to reach the cut (input layer first)
    input_elements: int  # one raw sample (network input)
    feature_elements: int  # values of one stored feature (head input width)
    feature_bytes: int  # bytes of one stored feature
    head: tuple[tuple[int, int], ...]  # (inputs, outputs) per trainable FC layer
    samples: int
    train_samples: int
    val_samples: int
    batch: int
    momentum: bool  # SGD keeps a velocity buffer
    bias_bytes: int  # storage width of the frozen layers' biases
    restore_best: bool = True  # early stopping keeps a copy of the best epoch's weights

    @property
    def head_params(self) -> int:
        return sum(i * o + o for i, o in self.head)

    @property
    def head_macs(self) -> int:
        """Multiply-accumulates of one forward pass through the head."""
        return sum(i * o for i, o in self.head)


def build_workload(
    model: str,
    cut: str,
    classes: int,
    hidden: int,
    samples: int,
    val_samples: int,
    batch: int,
    momentum: bool,
    scheme: str,
    restore_best: bool = True,
) -> Workload:
    """Counts for one configuration; the model and cut are checked by the zoo (its ValueError)."""
    spec = get_model(model)
    cut_layer = spec.check_cut(cut)
    if scheme not in BIAS_BYTES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; cost models know: {', '.join(BIAS_BYTES)}")
    if classes < 1:
        raise ValueError(f"model {model}: the head needs >= 1 class, got {classes}")
    return Workload(
        model=model,
        cut=cut,
        layers=(spec.layers[0], *spec.layers_up_to(cut)),
        input_elements=prod(spec.input_shape),
        feature_elements=cut_layer.elements,
        feature_bytes=cut_layer.bytes,
        head=tuple(head_layers(cut_layer.elements, hidden, classes)),
        samples=samples,
        train_samples=samples - val_samples,
        val_samples=val_samples,
        batch=batch,
        momentum=momentum,
        bias_bytes=BIAS_BYTES[scheme],
        restore_best=restore_best,
    )


def workload_from_config(config: Configuration, classes: int | None = None) -> Workload:
    """Validate model, cut and task through the registries (their ValueError) and count. `classes` overrides
    the task's class count (a user's npz labels are known only to the study)."""
    task = get_task(config.task)
    spec = get_model(config.model)
    spec.check_cut(config.cut)
    if task.input_shape and tuple(task.input_shape) != tuple(spec.input_shape):
        raise ValueError(
            f"task {task.name!r} gives inputs of shape {task.input_shape}, "
            f"model {spec.name!r} expects {spec.input_shape}"
        )
    classes = task.classes if classes is None else classes
    if classes < 1:
        raise ValueError(f"task {task.name!r} defines no target classes; the head size is unknown")
    return build_workload(
        config.model,
        config.cut,
        classes,
        config.hidden,
        config.samples,
        config.val_samples,
        config.batch,
        config.momentum > 0,
        config.scheme,
        config.restore_best,
    )
