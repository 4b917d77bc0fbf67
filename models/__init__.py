"""Accuracy side of microtl-dse: data, model zoo, pretraining, int8 quantization, features, head training.

Kept import-light on purpose: `cost_models` and `dse` import the pure-Python parts (zoo, tasks, prng, kernels,
arena) without pulling in torch. The configuration is the shared core's (`vocabulary`); `config` re-exports it.

Modules, in the order data flows through them:
- zoo, tasks: the networks and tasks as plain data (pure Python); kernels, arena: which C kernel runs a layer and
  the frozen network's activation plan (what firmware declares and cost_models prices);
- data: task splits and the balanced sample draw (numpy, scikit-learn);
- network, pretrain: the float torch network of a zoo spec and its cached source pretraining;
- quantize, intref: int8 post-training quantization by scheme, and the integer reference (golden model of the C
  kernels);
- features: int8 outputs at a cut point and their dequantization;
- head: the MicroTL head training (numpy, as the firmware does it);
- simulate: accuracy of a configuration over repeated runs, with in-process caches.
"""
