"""Simulated jets (Pythia 8 + fastjet) in the hls4ml HDF5 layout, read by the same converter as real data."""
