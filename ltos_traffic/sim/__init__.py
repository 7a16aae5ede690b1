"""The simulator boundary: the only package that imports ``libsumo``, ``traci`` or ``sumolib``.

``simulator``: one SUMO process per environment (libsumo in-process or in a worker process,
traci for the GUI), subscriptions, tripinfo statistics; ``topology``: agents, lanes,
movements and phases read from a ``.net.xml`` with ``sumolib``. SUMO's string ids and
camelCase API stop here; above it, agents and lanes are integer indices.
"""
