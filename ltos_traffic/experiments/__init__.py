"""Running experiments: set-up, the episode loop, training, checkpoints, run directories.

``experiment``: one (scenario, controller, seed) run, train then evaluate, and the common
set-up (:func:`~ltos_traffic.experiments.experiment.make_run`); ``runner``: one episode of
an environment and a controller; ``training``: training with a checkpoint per episode and
the one ``episodes.csv`` row builder; ``parallel``: worker processes feeding one learner;
``checkpoint``: save and load a controller's state, find the shipped checkpoints; ``seeds``:
which environment seed each episode uses; ``rundir``: the run directory's files; ``compare``:
run what a comparison is missing; ``sweep``: many runs, locally or on Ray; ``shipped``: make
the shipped checkpoints; ``gui``: watch a controller in sumo-gui.
"""
