"""Shared network blocks: MLPs, the seeded initialiser, DGN's relation block, soft updates (Polyak).

Shapes use ``B`` for the batch (joint transitions), ``N`` agents, ``K`` the padded
neighbourhood size from :func:`ltos_traffic.types.neighbourhood` (self first) and
``E`` feature units.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int | None = None) -> nn.Sequential:
    """A ReLU multilayer perceptron.

    Args:
        in_dim: input units.
        hidden: units of each hidden layer; each is followed by a ReLU.
        out_dim: units of a final linear layer without activation, or ``None``
            to end on the last hidden ReLU.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def init_normal_(module: nn.Module, generator: torch.Generator, std: float = 0.05) -> None:
    """Table 4's "random normal" initialiser, drawn from ``generator`` only.

    Every weight of a linear layer is drawn from N(0, std²) and every bias set
    to zero, so two modules built with equally seeded generators are identical
    whatever the global torch RNG state is.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            with torch.no_grad():
                layer.weight.normal_(0.0, std, generator=generator)
                if layer.bias is not None:
                    layer.bias.zero_()


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Features of each agent's neighbourhood.

    Args:
        x: ``(B, N, E)`` per-agent features.
        index: ``(N, K)`` long, neighbour indices (self first, padded with self).

    Returns:
        ``(B, N, K, E)``: ``out[b, i, k] = x[b, index[i, k]]``.
    """
    # index_select is x[:, index] bit for bit, forward and backward, at a third of the cost.
    return x.index_select(1, index.reshape(-1)).unflatten(1, index.shape)


class Relation(nn.Module):
    """DGN's relation kernel: multi-head dot-product attention over a neighbourhood.

    Agent ``i``'s query attends to the keys of every member of its neighbourhood
    (itself included); padded slots get no attention. The output is
    ``ReLU(W_o · concat_heads(Σ_k α_ik v_k))``. The sum over slots makes the
    output independent of the order in which neighbours are listed.

    Optional edge features (``F`` per slot, e.g. the sharing weight that
    neighbour ``k`` gives to ``i`` in LToS) are appended to the neighbour's
    features before the keys and values are computed, so the output is a
    differentiable function of them.
    """

    def __init__(self, dim: int, heads: int, edge_dim: int = 0) -> None:
        """Build the block.

        Args:
            dim: input and output units ``E``; each head has ``dim`` units (as in DGN).
            heads: attention heads (Table 4: 1 in traffic, 4 in the grid-worlds).
            edge_dim: edge features per neighbourhood slot, 0 for none.
        """
        super().__init__()
        self.heads = heads
        self.dim = dim
        self.query = nn.Linear(dim, dim * heads, bias=False)
        self.key = nn.Linear(dim, dim * heads, bias=False)
        self.value = nn.Linear(dim, dim * heads)
        # Keys and values are linear in [h_j, e_ij]: project h once per agent, gather,
        # then add the edge part (K times fewer multiplications than projecting slots).
        self.edge_key = nn.Linear(edge_dim, dim * heads, bias=False) if edge_dim else None
        self.edge_value = nn.Linear(edge_dim, dim * heads, bias=False) if edge_dim else None
        self.out = nn.Linear(dim * heads, dim)

    def forward(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        mask: torch.Tensor,
        edges: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend over each neighbourhood.

        Args:
            x: ``(B, N, E)`` agent features.
            index: ``(N, K)`` long neighbour indices.
            mask: ``(N, K)`` bool, ``False`` on padded slots.
            edges: ``(B, N, K, F)`` edge features, or ``None``.

        Returns:
            ``(B, N, E)`` new features.
        """
        b, n, _ = x.shape
        k = index.shape[1]
        q = self.query(x).view(b, n, self.heads, self.dim)
        keys = gather_neighbours(self.key(x), index)  # (B, N, K, H·E)
        values = gather_neighbours(self.value(x), index)
        if self.edge_key is not None and self.edge_value is not None:
            if edges is None:
                raise ValueError("this relation block needs edge features")
            keys = keys + self.edge_key(edges)
            values = values + self.edge_value(edges)
        keys = keys.view(b, n, k, self.heads, self.dim)
        values = values.view(b, n, k, self.heads, self.dim)
        # Broadcast products beat einsum/bmm for these tiny per-agent matrices on CPU.
        scores = (q[:, :, None] * keys).sum(-1) / self.dim**0.5  # (B, N, K, H)
        scores = scores.masked_fill(~mask[None, :, :, None], float("-inf"))
        attention = torch.softmax(scores, dim=2)
        mixed = (attention[..., None] * values).sum(dim=2)  # (B, N, H, E)
        return torch.relu(self.out(mixed.reshape(b, n, self.heads * self.dim)))


def masked_max(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Largest legal value along the last axis (illegal entries count as ``-inf``).

    Args:
        q: ``(..., A)`` values.
        mask: ``(..., A)`` bool, legal entries; at least one per row.
    """
    return q.masked_fill(~mask, float("-inf")).max(dim=-1).values


class Polyak:
    """Soft updates (Polyak averaging) of one target network toward its source.

    The parameter lists are taken once: walking the module tree for them at every
    step cost about a tenth of a DGN training step. ``load_state_dict`` copies into
    the same parameter tensors, so the lists stay valid.
    """

    def __init__(self, target: nn.Module, source: nn.Module) -> None:
        """Pair ``target`` with ``source`` (same architecture)."""
        self.target: list[torch.Tensor] = list(target.parameters())
        self.source: list[torch.Tensor] = list(source.parameters())
        if [p.shape for p in self.target] != [p.shape for p in self.source]:
            raise ValueError("target and source networks differ in their parameters")

    def __call__(self, tau: float) -> None:
        """``target ← (1 - tau) · target + tau · source``, in place (nothing for no parameters)."""
        if not self.target:
            return
        with torch.no_grad():
            torch._foreach_lerp_(self.target, self.source, tau)


def make_optimizer(name: str, params: Sequence[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """The optimiser a table names: ``"rmsprop"``, ``"adam"`` or ``"sgd"``.

    The multi-tensor (``foreach``) implementation does the same arithmetic as the
    per-tensor loop in a few calls instead of several per parameter.

    Raises:
        ValueError: for another name (configs validate this earlier).
    """
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}; choose rmsprop, adam or sgd")
