"""Accuracy side of microtl-dse: data, model zoo, pretraining, int8 quantization, features, head training.

Kept import-light on purpose: `cost_models` and `dse` import the pure-Python parts (configuration, zoo,
tasks) without pulling in torch.
"""
