"""Environments: traffic on SUMO and the grid-world validation scenarios."""
