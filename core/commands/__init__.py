"""Command-line subcommands: each module adds its arguments and runs one job (main.py dispatches)."""
