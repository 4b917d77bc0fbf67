"""How a study runs: the Optuna search, one trial's evaluation, the grid sampler and the workers."""
