"""The W1-W6 workloads of shoal issue 10, run by `python -m bench.run`."""
