"""The paper's op-count model (Profentzas et al.'s published firmware): its counts, its records (Table III), the outlier screen and the fit of term scales and cycle coefficients."""
