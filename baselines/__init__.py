"""Baseline controllers, one file each, discovered automatically by the registry."""
