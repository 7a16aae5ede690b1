"""Shared network blocks and their training plumbing.

MLPs, the seeded initialiser, DGN's relation block (dense or gathered attention),
soft updates (Polyak) and the optimisers (per parameter, or over one flat tensor).

Shapes use ``B`` for the batch (joint transitions), ``N`` agents, ``K`` the padded
neighbourhood size from :func:`ltos_traffic.types.neighbourhood` (self first) and
``E`` feature units.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

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


# Up to this many agents the relation block attends over a dense N x N score matrix (a few
# batched matrix products); above it, over gathered (B, N, K, E) neighbour slots, which grow
# with N K instead of N². On grid6x6 (N = 36, K = 5) the dense form halves the block's cost.
DENSE_ATTENTION_MAX_AGENTS = 128


def attention_bias(index: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """``(N, N)`` float: 0 where j is a real member of i's neighbourhood, -inf elsewhere.

    Added to all-pairs attention scores, it leaves each agent its neighbourhood
    (itself included).
    ``None`` above :data:`DENSE_ATTENTION_MAX_AGENTS` agents: the relation blocks then
    attend over gathered slots.

    Raises:
        ValueError: when a neighbourhood lists one agent in two real slots (a dense
            matrix cannot count it twice).
    """
    n = index.shape[0]
    if n > DENSE_ATTENTION_MAX_AGENTS:
        return None
    allowed = torch.zeros((n, n), dtype=torch.bool, device=index.device)
    rows = torch.arange(n, device=index.device)[:, None].expand_as(index)
    allowed[rows[mask], index[mask]] = True
    if int(allowed.sum()) != int(mask.sum()):
        raise ValueError("a neighbourhood lists the same agent in two real slots")
    bias = torch.zeros((n, n), device=index.device)
    return bias.masked_fill(~allowed, float("-inf"))


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

    Two evaluations of the same function: without edge features and given the
    :func:`attention_bias`, scores of all pairs come from one batched product
    ``Q Kᵀ`` plus the bias (-inf off the neighbourhood), so no ``(B, N, K, E)``
    slot tensor is built; otherwise keys and values are gathered per slot. They
    agree up to float rounding (tests/test_relation.py).
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
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend over each neighbourhood.

        Args:
            x: ``(B, N, E)`` agent features.
            index: ``(N, K)`` long neighbour indices.
            mask: ``(N, K)`` bool, ``False`` on padded slots.
            edges: ``(B, N, K, F)`` edge features, or ``None``.
            bias: ``(N, N)`` :func:`attention_bias` of ``index`` and ``mask``, or
                ``None``; given and without edge features, the dense evaluation runs.

        Returns:
            ``(B, N, E)`` new features.
        """
        if self.edge_key is not None and edges is None:
            raise ValueError("this relation block needs edge features")
        if bias is not None and self.edge_key is None:
            mixed = self._dense(x, bias)
        else:
            mixed = self._gathered(x, index, mask, edges)
        return torch.relu(self.out(mixed))

    def _dense(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """``(B, N, H·E)`` mixed values from all-pairs scores masked to the neighbourhoods."""
        b, n, _ = x.shape
        h, e = self.heads, self.dim

        def per_head(y: torch.Tensor) -> torch.Tensor:  # (B, N, H·E) -> (B·H, N, E)
            return y.view(b, n, h, e).transpose(1, 2).reshape(b * h, n, e)

        q, keys, values = per_head(self.query(x)), per_head(self.key(x)), per_head(self.value(x))
        # bias + Q Kᵀ / √E in one call; -inf off the neighbourhood gives zero attention
        scores = torch.baddbmm(bias, q, keys.transpose(1, 2), alpha=e**-0.5)  # (B·H, N, N)
        mixed = torch.bmm(torch.softmax(scores, dim=-1), values)  # (B·H, N, E)
        return mixed.view(b, h, n, e).transpose(1, 2).reshape(b, n, h * e)

    def _gathered(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        mask: torch.Tensor,
        edges: torch.Tensor | None,
    ) -> torch.Tensor:
        """``(B, N, H·E)`` mixed values from keys and values gathered per neighbourhood slot."""
        b, n, _ = x.shape
        k = index.shape[1]
        q = self.query(x).view(b, n, self.heads, self.dim)
        keys = gather_neighbours(self.key(x), index)  # (B, N, K, H·E)
        values = gather_neighbours(self.value(x), index)
        if self.edge_key is not None and self.edge_value is not None and edges is not None:
            keys = keys + self.edge_key(edges)
            values = values + self.edge_value(edges)
        keys = keys.view(b, n, k, self.heads, self.dim)
        values = values.view(b, n, k, self.heads, self.dim)
        # Broadcast products beat einsum/bmm for these tiny per-agent matrices on CPU.
        scores = (q[:, :, None] * keys).sum(-1) / self.dim**0.5  # (B, N, K, H)
        scores = scores.masked_fill(~mask[None, :, :, None], float("-inf"))
        attention = torch.softmax(scores, dim=2)
        mixed = (attention[..., None] * values).sum(dim=2)  # (B, N, H, E)
        return mixed.reshape(b, n, self.heads * self.dim)


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


class FlatOptimizer:
    """One optimiser step over all of a network's parameters as one flat tensor.

    Every parameter (and its gradient) becomes a view into one flat tensor, and the
    named optimiser steps that tensor: five elementwise calls per step instead of five
    per parameter (about 0.3 ms of a 4 ms DGN training step on grid6x6). Elementwise
    updates do not depend on how elements are grouped, so the arithmetic is the
    per-parameter optimiser's bit for bit (tests/test_flat_optimizer.py), and the state
    dict has the per-parameter layout of :func:`make_optimizer`'s optimiser, so
    checkpoints move between the two.
    """

    def __init__(self, name: str, params: Sequence[nn.Parameter], lr: float) -> None:
        """Re-home ``params`` (leaves of one network, all float32 on one device) into flat storage.

        Raises:
            ValueError: for an unknown optimiser name, or parameters of mixed dtype or device.
        """
        params = list(params)
        if len({(p.dtype, p.device) for p in params}) > 1:
            raise ValueError("flat optimisation needs parameters of one dtype and device")
        self.params = params
        self._offsets = list(itertools.accumulate((p.numel() for p in params), initial=0))
        like = params[0] if params else torch.zeros(0)
        data = torch.empty(self._offsets[-1], dtype=like.dtype, device=like.device)
        self._grad = torch.zeros_like(data)
        self._grad_views: list[torch.Tensor] = []
        with torch.no_grad():
            for p, start, end in zip(params, self._offsets, self._offsets[1:], strict=False):
                data[start:end].copy_(p.detach().reshape(-1))
                p.data = data[start:end].view_as(p)
                self._grad_views.append(self._grad[start:end].view_as(p))
        self.flat = nn.Parameter(data)
        self.flat.grad = self._grad
        self.inner = make_optimizer(name, [self.flat], lr)
        self.zero_grad()

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The inner optimiser's groups (for learning-rate schedules)."""
        return self.inner.param_groups

    def zero_grad(self) -> None:
        """Zero every gradient; backward then accumulates into the flat views in place."""
        self._grad.zero_()
        for p, view in zip(self.params, self._grad_views, strict=True):
            if p.grad is not view:  # someone set it to None or replaced it: re-attach
                p.grad = view

    def step(self) -> None:
        """One update of every parameter from its gradient."""
        self.inner.step()

    def state_dict(self) -> dict[str, Any]:
        """The state dict of the per-parameter optimiser over ``params``."""
        inner = self.inner.state_dict()
        flat_state = inner["state"].get(0, {})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for i, p in enumerate(self.params if flat_state else ()):
            start, end = self._offsets[i], self._offsets[i + 1]
            state[i] = {}
            for key, value in flat_state.items():  # per-element state has the flat shape
                part = value[start:end].view_as(p) if value.shape == self.flat.shape else value
                state[i][key] = part.clone()
        (group,) = inner["param_groups"]
        groups = [{**group, "params": list(range(len(self.params)))}]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a per-parameter state dict (this class's or :func:`make_optimizer`'s).

        Raises:
            ValueError: when its parameter count or shapes differ.
        """
        (group,) = state_dict["param_groups"]
        if len(group["params"]) != len(self.params):
            raise ValueError(
                f"optimiser state for {len(group['params'])} parameters, this network has "
                f"{len(self.params)}"
            )
        per_param = [state_dict["state"].get(i, {}) for i in group["params"]]
        flat_state: dict[str, torch.Tensor] = {}
        if per_param and per_param[0]:
            for key, first in per_param[0].items():
                if first.shape == self.params[0].shape and first.dim() > 0:
                    parts = []
                    for p, entry in zip(self.params, per_param, strict=True):
                        if entry[key].shape != p.shape:
                            raise ValueError("optimiser state shapes do not fit this network")
                        parts.append(entry[key].reshape(-1))
                    flat_state[key] = torch.cat(parts)
                else:
                    flat_state[key] = first.clone()  # a step counter, shared by all
        self.inner.load_state_dict(
            {
                "state": {0: flat_state} if flat_state else {},
                "param_groups": [{**group, "params": [0]}],
            }
        )
