"""SUMO networks and demand: how each network comes to be (see ``networks/`` at the top level).

``files``: the built network and route files (:class:`~ltos_traffic.net.files.NetFiles`) and
their cache; ``grid``: the generated grids (``netgenerate`` + ``netconvert``, own demand);
``cityflow``: CityFlow JSON to SUMO (Shenzhen, ``ltos6x6``) and the pinned datasets;
``fetch``: download and check those datasets; ``resco``: the RESCO maps that ``sumo-rl`` ships;
``sumocfg``: read a ``.sumocfg``; ``resolve``: a scenario's ``[network]`` table to files.

Imports only :mod:`ltos_traffic.errors` and each other; nothing here runs a simulation.
"""
