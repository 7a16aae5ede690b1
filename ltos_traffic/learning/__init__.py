"""Learning plumbing shared by the learning controllers (no controller lives here).

``buffer``: joint replay; ``nn``: layers (MLP, relation/attention, optimisers);
``dgn``: DGN's network, used by LToS's low level and by the DGN baseline;
``exploration``: epsilon schedules and OU noise; ``qlearning``: the joint-replay
Q-learning base class :class:`~ltos_traffic.learning.qlearning.QLearner`;
``rollout``: on-policy rollout storage for the actor-critic baselines; ``rng``: RNG-state
save and restore for checkpoints.
"""
