"""`python -m cost_models [board]`: fit the board's calibration from its records and print the report."""
import sys

from cost_models.paper.calibration import load_calibration, report

print(report(load_calibration(sys.argv[1] if len(sys.argv) > 1 else "nrf52840dk")))
