"""The workload: what a configuration asks the device to hold and compute, as plain counts.

Both a `Configuration` (to predict) and a measurement record (to calibrate) are reduced to a `Workload`, so the
predictors price both through the same code. Only the pure-Python parts of `models` are imported here.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

from models.tasks import get_task
from models.zoo import LayerSpec, get_model, head_layers
from vocabulary.configuration import MODES, Configuration

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
    mode: str = "stored"  # "stored" (MicroTL: sample store, epochs) or "streaming" (TinyOL: one step per sample)
    replay: int = 0  # streaming: ring of the K most recent earlier features, each trained with every new sample

    @property
    def streaming(self) -> bool:
        return self.mode == "streaming"

    @property
    def ring_steps(self) -> int:
        """Streaming: steps on ring entries over the collection, sum over i < N of min(i, K) (the ring holds the
        min(i, K) samples before sample i)."""
        n, k = self.samples, min(self.replay, self.samples)
        return k * (k - 1) // 2 + (n - k) * k if self.streaming else 0

    @property
    def steps(self) -> int:
        """Streaming: SGD steps of batch 1 over the collection, sum over i < N of 1 + min(i, K)."""
        return self.samples + self.ring_steps if self.streaming else 0

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
    mode: str = "stored",
    replay: int = 0,
) -> Workload:
    """Counts for one configuration; the model and cut are checked by the zoo (its ValueError)."""
    spec = get_model(model)
    cut_layer = spec.check_cut(cut)
    if scheme not in BIAS_BYTES:
        raise ValueError(f"unknown quantization scheme {scheme!r}; cost models know: {', '.join(BIAS_BYTES)}")
    if classes < 1:
        raise ValueError(f"model {model}: the head needs >= 1 class, got {classes}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "streaming" and (val_samples or batch != 1 or restore_best or not 0 <= replay <= samples):
        raise ValueError(f"mode 'streaming' trains with batch 1, no validation split and the last weights, replay "
                         f"in [0, samples]: got batch {batch}, val_samples {val_samples}, restore_best "
                         f"{restore_best}, replay {replay}")
    if mode == "stored" and replay:
        raise ValueError(f"replay is a streaming setting; mode 'stored' needs replay 0, got {replay}")
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
        mode=mode,
        replay=replay,
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
        config.mode,
        config.replay,
    )
