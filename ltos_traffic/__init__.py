"""ltos-traffic: adaptive traffic-signal control on SUMO with LToS and baselines."""

__version__ = "0.1.0"
