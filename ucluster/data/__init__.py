"""Parquet jet datasets: the schema shared with the converter, and per-worker streaming."""
