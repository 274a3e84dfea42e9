"""The ``--attacker`` model: resolved from a config name or a raw spec, stored with the run."""

from __future__ import annotations

from pathlib import Path

from medsafe.errors import ConfigError, StoreError
from medsafe.models.base import Backend
from medsafe.models.config import NamedModel, create_named_backend, load_optional, resolve_model
from medsafe.redteam.attacker import ATTACK_MODES, ATTACKER_PARAMS
from medsafe.schema import AttackerSpec, RunSpec


def attacker_spec(ref: str, mode: str | None = None, config: Path | None = None) -> AttackerSpec:
    """``--attacker REF`` (a name in the ``--config`` TOML or ``KIND/NAME``) and
    ``--attack-mode``, as stored with the run (the key's variable name only, never the key)."""
    named = resolve_model(ref, load_optional(config))
    chosen = mode or "crescendo"
    if chosen not in ATTACK_MODES:
        raise ConfigError(f"--attack-mode must be one of {', '.join(ATTACK_MODES)}, not {mode!r}")
    params = ATTACKER_PARAMS.model_copy(
        update=named.params.model_dump(exclude_unset=True) if named.params else {}
    )
    return AttackerSpec(
        model=named.model,
        base_url=named.base_url,
        api_key_env=named.api_key_env,
        params=params,
        mode=chosen,
    )


def attacker_backend(spec: AttackerSpec, timeout_s: float) -> Backend:
    """The backend of a stored attacker spec (its key read from its env variable, if any)."""
    named = NamedModel(model=spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env)
    return create_named_backend(named, timeout_s=timeout_s)


def check_attacker(
    spec: RunSpec, ref: str | None, mode: str | None, config: Path | None = None
) -> None:
    """A resumed run must keep its attacker: refuse a different ``--attacker``/``--attack-mode``."""
    stored = spec.attacker
    if ref is None and mode is None:
        return
    wanted = attacker_spec(ref, mode, config) if ref is not None else None
    same_model = wanted is None or (stored is not None and wanted.model == stored.model)
    same_mode = mode is None or (stored is not None and stored.mode == mode)
    if not (same_model and same_mode):
        was = f"{stored.model} ({stored.mode})" if stored else "scripted turns"
        raise StoreError(
            f"run {spec.run_id!r} was played with {was}; resume it with the same attacker, "
            "or use a new --run-id"
        )
