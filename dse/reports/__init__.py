"""What a study shows: the trial table, tables, plots and summary.md sections."""
