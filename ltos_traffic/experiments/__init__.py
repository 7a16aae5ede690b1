"""Running experiments: the episode loop, training, run directories, checkpoints.

``runner``: one episode of an environment and a controller; ``rundir``: the run directory's
files (atomic writes, CSV, ``config.json``); ``checkpoint``: save and load a controller's
state; ``training``: training with a checkpoint per episode; ``parallel``: worker processes
feeding one learner; ``experiment``: one (scenario, controller, seed) run, train then
evaluate; ``shipped``: the checkpoints shipped in the package; ``compare``: run what a
comparison is missing; ``sweep``: many runs, locally or on Ray; ``gui``: watch one in sumo-gui.
"""
