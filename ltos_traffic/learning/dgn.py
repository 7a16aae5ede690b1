"""DGN's network (Jiang et al., ICLR 2020), shared by the DGN baseline and LToS's low level.

Each agent's observation goes through an MLP encoder; ``conv_layers`` relation
blocks (multi-head dot-product attention over the agent's neighbourhood, itself
included) mix neighbour features; a linear Q head reads the concatenation of the
encoder output and every relation output. Parameters are shared by all agents,
as in DGN, and all agents run in one batched forward.

:class:`DGNLearner` trains it by the joint-replay Q-learning of
:mod:`ltos_traffic.learning.qlearning` (no temporal relation regularisation); the
registered controllers are ``baselines/dgn.py`` (``dgn``) and
``ltos_traffic/controllers/ltos.py`` (``ltos``, ``fixed_ltos``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ltos_traffic.learning.nn import Relation, attention_bias, mlp
from ltos_traffic.learning.qlearning import QConfig, QLearner

ATTENTION = ("dense", "gathered")


@dataclass(frozen=True)
class DGNConfig(QConfig):
    """Table 4 (Traffic-6x6 column) plus DGN's graph sizes."""

    heads: int = 1  # attention heads per relation block (Table 4: 4 / 4 / 1 / 1)
    conv_layers: int = 2  # relation blocks stacked (DGN: 2)
    attention: str = "dense"  # how relation blocks evaluate attention: "dense" (all pairs
    # masked to the neighbourhoods, up to 128 agents; since 2026-12-05) or "gathered" (per
    # neighbourhood slot: the same function with other float sums, the only evaluation before
    # 2026-12-05, so it reproduces earlier runs bit for bit)

    def __post_init__(self) -> None:
        """Check the graph sizes too."""
        super().__post_init__()
        if self.heads < 1 or self.conv_layers < 0:
            raise ValueError("heads must be at least 1 and conv_layers at least 0")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")


def relation_bias(
    config: DGNConfig, index: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor | None:
    """The relation blocks' :func:`attention_bias`, or ``None`` for the gathered evaluation."""
    return attention_bias(index, mask) if config.attention == "dense" else None


class DGNNet(nn.Module):
    """Encoder MLP, relation blocks over neighbourhoods, Q head; ``(B, N, D) -> (B, N, A)``."""

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        config: DGNConfig,
        index: torch.Tensor,
        mask: torch.Tensor,
        edge_dim: int = 0,
        input_edges: int = 0,
    ) -> None:
        """Build the network.

        Args:
            obs_dim: observation size ``D``.
            n_actions: actions ``A``.
            config: sizes (``hidden``, ``heads``, ``conv_layers``).
            index: ``(N, K)`` neighbour indices, self first.
            mask: ``(N, K)`` bool, real neighbourhood slots.
            edge_dim: edge features per slot fed to every relation block (LToS: 1).
            input_edges: edge values ``K * F`` concatenated to each agent's
                observation at the encoder's input (LToS as released: the
                received sharing weights), 0 for none. Slot 0 (the agent
                itself) comes first, the other slots sorted by their first
                feature, largest first, so the input does not depend on the
                order in which neighbours are listed.
        """
        super().__init__()
        dim = config.hidden[-1]
        self.edge_dim = edge_dim
        self.input_edges = input_edges
        self.encoder = mlp(obs_dim + input_edges, config.hidden)
        self.relations = nn.ModuleList(
            Relation(dim, config.heads, edge_dim) for _ in range(config.conv_layers)
        )
        self.head = nn.Linear(dim * (1 + config.conv_layers), n_actions)
        self.index: torch.Tensor
        self.mask: torch.Tensor
        self.register_buffer("index", index.clone())
        self.register_buffer("mask", mask.clone())
        # derived from index and mask, so not saved: checkpoints keep their keys
        self.attention_bias: torch.Tensor | None
        self.register_buffer("attention_bias", relation_bias(config, index, mask), persistent=False)

    def forward(self, obs: torch.Tensor, edges: torch.Tensor | None = None) -> torch.Tensor:
        """Q-values ``(B, N, A)`` from observations ``(B, N, D)`` and edges ``(B, N, K, F)``."""
        if self.input_edges:
            if edges is None:
                raise ValueError("this network reads edge values at its input; pass edges")
            obs = torch.cat([obs, _sorted_slots(edges).flatten(2)], dim=-1)
        h = self.encoder(obs)
        features = [h]
        relation_edges = edges if self.edge_dim else None
        for relation in self.relations:
            h = relation(h, self.index, self.mask, relation_edges, self.attention_bias)
            features.append(h)
        return self.head(torch.cat(features, dim=-1))


def _sorted_slots(edges: torch.Tensor) -> torch.Tensor:
    """``(B, N, K, F)`` edges with slots 1..K-1 sorted by feature 0, largest first.

    Padded slots hold zeros and the values are non-negative (sharing weights),
    so padding stays last; gradients flow to every slot through the permutation.
    """
    k = edges.shape[2]
    if k <= 2:
        return edges
    # slot 0 keyed +inf stays first under one stable sort of all K slots (no cut and re-join)
    first = torch.zeros(k, dtype=edges.dtype, device=edges.device)
    first[0] = float("inf")
    order = (edges[..., 0] + first).argsort(dim=-1, descending=True, stable=True)
    return edges.gather(2, order[..., None].expand_as(edges))


class DGNLearner(QLearner):
    """:class:`DGNNet` trained by joint-replay Q-learning (not registered; see the subclasses)."""

    Config: ClassVar[type] = DGNConfig
    config: DGNConfig
    edge_dim: ClassVar[int] = 0  # edge features per neighbourhood slot (LToS: 1)

    def _make_q_net(self) -> nn.Module:
        return DGNNet(
            self.spec.obs_dim,
            self.spec.n_actions,
            self.config,
            self.nbr_index,
            self.nbr_mask,
            self.edge_dim,
        )
