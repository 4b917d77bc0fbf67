"""The `dse` commands' modules, each loaded by dse/cli.py's command table only when it runs."""
