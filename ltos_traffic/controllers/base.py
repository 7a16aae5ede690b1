"""The controller protocol, the registry, and typed hyperparameter overrides.

A controller is one class in one file, decorated with :func:`register`. Modules
in ``ltos_traffic/controllers/`` and in the ``baselines`` package are discovered
on first lookup, so adding a method touches one file.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np

from ltos_traffic.errors import UserError
from ltos_traffic.types import EnvSpec, TimeStep, Transition


@runtime_checkable
class Controller(Protocol):
    """What every traffic-signal (or grid-world) controller implements.

    Class attributes: ``name`` (registry key, set by :func:`register`), ``Config``
    (frozen dataclass of hyperparameters, each with unit and paper value), ``learns``
    (``False`` for classical controllers, which are evaluated without training), and
    two optional flags, both ``False`` when absent:

    * ``network_programs``: ``True`` leaves the signals to the network's own
      programs (:func:`ltos_traffic.experiments.runner.reset` tells the environment);
    * ``parallel_rollouts``: ``True`` when ``observe`` needs nothing but the
      transition (and, for a :class:`KeepsActingState` controller, its acting
      state), so episodes may be acted in worker processes
      (:mod:`ltos_traffic.experiments.parallel`). Such a controller draws its
      exploration from ``self.rng`` (numpy ``Generator``) and ``self.generator``
      (torch ``Generator``), which the workers reseed for every episode.

    Optional capabilities are the small protocols below (:class:`Explores`,
    :class:`SharesRewards`, :class:`KeepsActingState`); the runner, training and
    reports use them through ``isinstance`` and nothing else.

    Constructor: ``(spec: EnvSpec, config: Config, seed: int)``.

    * ``act(step, explore=...)`` returns ``(N,)`` int64 actions inside
      ``step.action_mask``; ``explore=False`` is the greedy policy.
    * ``observe(transition)`` stores the transition, runs any update that is
      due and returns finite loss statistics (``{}`` when nothing was learned).
      ``transition.next_step.done`` marks an episode boundary.
    * ``state_dict()`` / ``load_state_dict()`` hold everything needed to resume:
      networks, optimisers, counters and RNG states, as tensors, numbers,
      strings and nested dicts/lists of those (loadable with ``weights_only``).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    learns: ClassVar[bool]

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray: ...

    def observe(self, transition: Transition) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Explores(Protocol):
    """A learning controller that explores: ``episodes.csv`` logs its rate per episode."""

    @property
    def exploration_rate(self) -> float:
        """Exploration rate (epsilon) of the current training episode."""
        ...


@runtime_checkable
class SharesRewards(Protocol):
    """A controller that learns to share rewards with its neighbours (LToS).

    The runner's :class:`~ltos_traffic.experiments.runner.SharingMeter` averages the
    greedy weights over an episode (``self_weight`` in ``episodes.csv`` and
    ``summary.json``), the evaluation writes them to ``weights.csv`` and the report
    draws them on the map. The meter reads the weights every
    ``config.hl_action_interval`` decisions (the weights then held; every decision
    when the config has no such field).
    """

    nbr_index: Any  # (N, K) neighbour indices, slot 0 the agent itself
    nbr_mask: Any  # (N, K) bool, the real slots

    def sharing_weights(self, obs: np.ndarray) -> np.ndarray:
        """Greedy sharing weights ``(N, K)`` for observations ``(N, D)``, rows summing to 1."""
        ...


@runtime_checkable
class KeepsActingState(Protocol):
    """A controller whose ``observe`` reads state that ``act`` left behind.

    Parallel training records ``acting_state()`` in the worker after every ``act``
    and restores it with ``load_acting_state`` in the learner before the matching
    ``observe`` (LToS: the sharing weights it acted with).
    """

    def acting_state(self) -> Any:
        """A copy of the state ``observe`` will need for the step just acted."""
        ...

    def load_acting_state(self, state: Any) -> None:
        """Restore :meth:`acting_state`'s copy before ``observe``."""
        ...


@dataclasses.dataclass(frozen=True)
class NoConfig:
    """Controllers without hyperparameters use this empty config."""


class StaticController:
    """Base for controllers that do not learn: ``observe`` and state are no-ops."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = NoConfig
    learns: ClassVar[bool] = False

    def __init__(self, spec: EnvSpec, config: Any, seed: int) -> None:
        self.spec = spec
        self.config = config
        self.seed = seed

    def act(self, step: TimeStep, *, explore: bool) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def observe(self, transition: Transition) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None


_REGISTRY: dict[str, type] = {}
_DISCOVERED = False
_DISCOVER_PACKAGES = ("ltos_traffic.controllers", "baselines")

C = TypeVar("C", bound=type)


def register(name: str) -> Callable[[C], C]:
    """Class decorator: register a controller under ``name`` (lowercase).

    Raises:
        KeyError: when another class already holds the name.
    """

    def deco(cls: C) -> C:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise KeyError(f"controller name {name!r} is registered twice")
        cls.name = name  # type: ignore[attr-defined]
        _REGISTRY[name] = cls
        return cls

    return deco


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for pkg_name in _DISCOVER_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_") and info.name != "base":
                importlib.import_module(f"{pkg_name}.{info.name}")


def controller_names() -> list[str]:
    """All registered controller names, sorted."""
    _discover()
    return sorted(_REGISTRY)


def controller_class(name: str) -> Any:
    """The class registered under ``name``.

    Raises:
        UserError: for an unknown name, listing the known ones.
    """
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UserError(
            f"unknown controller {name!r}; choose one of: {known} (see `ltos-traffic list`)"
        ) from None


def make_controller(
    name: str,
    spec: EnvSpec,
    seed: int,
    *,
    scenario_hparams: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> Any:
    """Build a controller with its resolved config.

    Resolution order: ``Config`` defaults < the scenario's ``[hparams.common]``
    (only keys the config has) < the scenario's ``[hparams.<name>]`` (every key
    must exist) < ``overrides`` (CLI ``--set key=value``; every key must exist).
    """
    cls = controller_class(name)
    config = resolve_config(cls.Config, name, scenario_hparams or {}, overrides or {})
    try:
        return cls(spec, config, seed)
    except ValueError as exc:  # e.g. torch rejecting lr=-1: the user's value, not a bug
        raise UserError(f"controller {name} rejects its hyperparameters: {exc}") from None


def resolve_config(
    config_cls: type,
    name: str,
    scenario_hparams: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, str],
) -> Any:
    """Apply scenario and CLI layers to ``config_cls()``; see :func:`make_controller`."""
    config = config_cls()
    fields = {f.name for f in dataclasses.fields(config)}
    common = {k: v for k, v in scenario_hparams.get("common", {}).items() if k in fields}
    config = _replace_typed(config, common, f"scenario [hparams.common] for {name}")
    config = _replace_typed(config, dict(scenario_hparams.get(name, {})), f"[hparams.{name}]")
    return _replace_typed(config, dict(overrides), "--set")


def _replace_typed(config: Any, values: Mapping[str, Any], where: str) -> Any:
    if not values:
        return config
    hints = typing.get_type_hints(type(config))
    fields = {f.name for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        if key not in fields:
            known = ", ".join(sorted(fields)) or "(none)"
            raise UserError(
                f"unknown hyperparameter {key!r} in {where} for {type(config).__module__}; "
                f"known keys: {known}"
            )
        changes[key] = convert_value(raw, hints[key], key)
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as exc:
        raise UserError(f"bad hyperparameter in {where}: {exc}") from None


def convert_value(raw: Any, hint: Any, key: str) -> Any:
    """Convert ``raw`` (a string from the CLI or a TOML value) to the type ``hint``."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null")):
            return None
        hint = args[0]
        origin = typing.get_origin(hint)
    try:
        if origin is tuple:
            parts = raw.split(",") if isinstance(raw, str) else list(raw)
            (elem,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
            return tuple(convert_value(p, elem, key) for p in parts)
        if hint is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if hint is int:
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw) if not isinstance(raw, str) else int(raw.strip())
        if hint is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if hint is str:
            return str(raw)
    except (ValueError, TypeError):
        tname = getattr(hint, "__name__", str(hint))
        raise UserError(
            f"hyperparameter {key!r} expects {tname}, got {raw!r}; fix the value"
        ) from None
    return raw


def parse_set_options(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Parse repeated ``--set key=value`` options into a dict.

    Raises:
        UserError: for an item without ``=``.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out
