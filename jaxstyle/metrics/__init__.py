"""Metrics: the toyfaces factor oracle, FD/FID/KID, PPL, separability, disentanglement."""
