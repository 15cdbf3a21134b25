"""The search space: a YAML file (conf/tune.yaml) read into typed parameters and sampled define-by-run.

Every key under ``params`` is a config field ``section.field``; whether it is searched as an int or a float
comes from the field's declared type, so the file only says the range::

    params:
      train.lr: {low: 1.0e-4, high: 3.0e-3, log: true}     # float field -> suggest_float
      model.k: {low: 5, high: 20}                          # int field   -> suggest_int
      train.batch_size: {choices: [64, 128, 256]}          # any field   -> suggest_categorical
      train.pretrain_epochs: {low: 0.2, high: 0.6, fraction_of: train.epochs}   # round(x * train.epochs)
      model.mass_bins: {low: 5, high: 40, when: {model.target: mass_bins}}      # conditional parameter
      model.bin_smoothing: {choices: [0, 1], when: {model.target: [mass_bins, mass_hybrid_bins]}}  # any of

Parameters are sampled in file order, and ``when`` sees the values sampled before it (or the base config's),
so a parameter can depend on an earlier choice; a list under ``when`` means any of its values. Validation
reuses the config's own: a misspelt field, a value of the wrong type or a malformed range is a one-line
:class:`SpaceError` naming the file and the parameter.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ucluster.config import Config, ConfigError, _apply, config_from_dict, field_type

# Fields the tuner itself sets for every trial: searching them would break the budgets or the bookkeeping.
RESERVED = {"train.epochs": "set by the tuner (--epochs and the halving rungs)", "data.path": "the dataset is fixed"}
RANGE_KEYS = {"low", "high", "log", "step", "fraction_of", "when"}
CHOICE_KEYS = {"choices", "when"}


class SpaceError(ValueError):
    """A problem with the search-space file, reported as one line naming the file and the parameter."""


@dataclass(frozen=True)
class Param:
    """One searched field. ``kind`` is int, float or categorical; a ``fraction_of`` parameter is a float."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    fraction_of: str = ""
    when: dict[str, Any] = field(default_factory=dict)  # field -> value, or a tuple of values (any of)

    @property
    def optuna_name(self) -> str:
        """The name in the Optuna study: a fraction is stored as such, not as the field it sets."""
        return f"{self.name}/{self.fraction_of}" if self.fraction_of else self.name


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    source: str = "search space"

    def sample(self, trial, base: Config) -> tuple[dict[str, Any], Config]:
        """Ask ``trial`` (an Optuna trial) for every parameter; returns the field overrides and the trial config.

        Raises :class:`ConfigError` when a sampled combination is invalid (e.g. mass_min >= mass_max).
        """
        values = base.to_dict()
        overrides: dict[str, Any] = {}
        for p in self.params:
            if not all(_holds(_get(values, k), v) for k, v in p.when.items()):
                continue
            if p.kind == "categorical":
                value = trial.suggest_categorical(p.optuna_name, list(p.choices))  # "a,b" -> list in the config
            elif p.kind == "int":
                value = trial.suggest_int(p.optuna_name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
            else:
                value = trial.suggest_float(p.optuna_name, float(p.low), float(p.high), step=p.step, log=p.log)
            if p.fraction_of:
                whole = _get(values, p.fraction_of)
                value = value * whole
                if isinstance(_get(values, p.name), int):
                    value = int(round(value))
            section, _, key = p.name.partition(".")
            values[section][key] = value
            overrides[p.name] = value
        return overrides, config_from_dict(values, source="sampled parameters")


def _get(values: dict, dotted: str) -> Any:
    section, _, key = dotted.partition(".")
    return values[section][key]


def _to_optuna(value: Any) -> Any:
    """Optuna's categorical choices must be scalars: a list choice (e.g. point_channels) becomes "a,b"."""
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else value


def _resolve(name: Any, where: str) -> Any:
    """The declared type of config field ``name``, or the config's own one-line error (with a suggestion)."""
    if not isinstance(name, str) or "." not in name:
        raise SpaceError(f"{where}: parameters are config fields 'section.field', got {name!r}")
    section, _, key = name.partition(".")
    try:
        return field_type(section, key, where)
    except ConfigError as exc:
        raise SpaceError(str(exc)) from None


def _holds(value: Any, condition: Any) -> bool:
    """A ``when`` condition: equal to the value, or (a tuple) among the values."""
    return value in condition if isinstance(condition, tuple) else value == condition


def _check_field(base: Config, name: str, value: Any, where: str) -> Any:
    """Apply ``value`` to a scratch copy of the config: unknown fields and wrong types fail as they would there."""
    _resolve(name, where)
    section, _, key = name.partition(".")
    scratch = copy.deepcopy(base)
    try:
        _apply(scratch, section, key, value, where)
    except ConfigError as exc:
        raise SpaceError(str(exc)) from None
    return getattr(getattr(scratch, section), key)


def _number(spec: dict, key: str, where: str) -> float | int | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpaceError(f"{where}: '{key}' must be a finite number, got {value!r}")
    return value


def _parse_param(base: Config, name: Any, spec: Any, source: str) -> Param:
    where = f"{source}: params.{name}"
    typ = _resolve(name, source)
    if name in RESERVED:
        raise SpaceError(f"{where}: cannot be searched: {RESERVED[name]}")
    if name.startswith("run."):
        raise SpaceError(f"{where}: run.* fields are set by the tuner for each trial and cannot be searched")
    if not isinstance(spec, dict):
        raise SpaceError(f"{where}: expected a mapping like {{low: 1, high: 10}} or {{choices: [a, b]}}, got {spec!r}")
    when = spec.get("when", {})
    if not isinstance(when, dict):
        raise SpaceError(f"{where}: 'when' must map config fields to values, got {when!r}")
    checked_when = {}
    for field_, value in when.items():
        if isinstance(value, list):  # any of these values
            if not value:
                raise SpaceError(f"{where}: when {field_}: an empty list matches nothing")
            checked_when[field_] = tuple(_check_field(base, field_, v, f"{where}: when") for v in value)
        else:
            checked_when[field_] = _check_field(base, field_, value, f"{where}: when")
    if "choices" in spec:
        unknown = sorted(set(spec) - CHOICE_KEYS)
        if unknown:
            raise SpaceError(f"{where}: '{unknown[0]}' does not go with 'choices' (allowed: choices, when)")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
        for choice in choices:
            if isinstance(choice, dict):
                raise SpaceError(f"{where}: a choice must be a value, got {choice!r}")
            _check_field(base, name, choice, source)
        return Param(name, "categorical", choices=tuple(_to_optuna(c) for c in choices), when=checked_when)
    unknown = sorted(set(spec) - RANGE_KEYS)
    if unknown:
        allowed = ", ".join(sorted(RANGE_KEYS | {"choices"}))
        raise SpaceError(f"{where}: unknown key '{unknown[0]}' (allowed: {allowed})")
    low, high, step = _number(spec, "low", where), _number(spec, "high", where), _number(spec, "step", where)
    if low is None or high is None:
        raise SpaceError(f"{where}: a range needs both 'low' and 'high' (or give 'choices')")
    if low > high:
        raise SpaceError(f"{where}: low {low} is above high {high}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: 'log' must be true or false, got {log!r}")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range needs low > 0, got {low}")
    if step is not None and (step <= 0 or log):
        raise SpaceError(f"{where}: 'step' must be positive and cannot go with 'log'")
    fraction_of = spec.get("fraction_of", "")
    if fraction_of:
        if _resolve(fraction_of, f"{where}: fraction_of") not in (int, float) or typ not in (int, float):
            raise SpaceError(f"{where}: fraction_of needs numeric fields, '{name}' and '{fraction_of}'")
        return Param(name, "float", low, high, log, step, fraction_of=fraction_of, when=checked_when)
    if typ is int:
        for key, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and not float(v).is_integer():
                raise SpaceError(f"{where}: '{name}' is an integer field, '{key}' must be an integer, got {v}")
        return Param(name, "int", int(low), int(high), log, int(step) if step else None, when=checked_when)
    if typ is not float:
        raise SpaceError(f"{where}: '{name}' is not numeric: give 'choices' instead of a range")
    _check_field(base, name, low, source)
    return Param(name, "float", float(low), float(high), log, step, when=checked_when)


def parse_space(raw: Any, base: Config, source: str = "search space") -> SearchSpace:
    """Validate a parsed YAML document against ``base`` (whose fields and types it must match)."""
    if not isinstance(raw, dict):
        raise SpaceError(f"{source}: expected a mapping with a 'params' section")
    unknown = sorted(set(raw) - {"params"})
    if unknown:
        raise SpaceError(f"{source}: unknown top-level key '{unknown[0]}' (expected 'params')")
    params = raw.get("params")
    if not isinstance(params, dict) or not params:
        raise SpaceError(f"{source}: 'params' must map config fields to ranges and hold at least one")
    parsed = tuple(_parse_param(base, name, spec, source) for name, spec in params.items())
    return SearchSpace(parsed, source)


def load_space(path: str | Path, base: Config) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: search-space file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_space(raw, base, str(path))
