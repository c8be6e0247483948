"""Redundancy policies and codecs, for the repository or one model: what new chunks get.

Composition: setting a policy previews it with :func:`services.redundancy.plan_policy` and then
runs :func:`services.redundancy.repair`, the same job as ``modelmanager repair``. Split from
services/devices.py, which registers the devices these policies place pieces on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmanager.core.codecs import CodecSettings
from modelmanager.core.jobs import JobContext
from modelmanager.core.redundancy import Policy
from modelmanager.core.repo.names import check_model_name
from modelmanager.core.repo.repository import DEFAULT_LOCK_TIMEOUT
from modelmanager.core.repo.versions import Policies
from modelmanager.errors import NotFoundError, UserError
from modelmanager.services import Changes, Workspace
from modelmanager.services.redundancy import PolicyPlan, RepairReport, plan_policy, repair
from modelmanager.services.safety import refuse_on_doubt


@dataclass(frozen=True)
class PolicyChange:
    """A policy set: the policy, for ``model`` (None: the repository's default), what the
    conversion did, and what to refresh: the models whose policy it is now (their Overview
    shows it), the storage survey when chunks were converted (health is judged against it)."""

    policy: Policy
    model: str | None
    report: RepairReport
    changes: Changes

    def to_json(self) -> dict[str, Any]:
        return {"policy": str(self.policy), "model": self.model, **self.report.to_json()}


def set_policy(
    ws: Workspace,
    policy: str,
    model: str | None = None,
    *,
    ctx: JobContext | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    new_model: bool = False,
) -> PolicyChange:
    """Set the default (or one model's) policy and convert stored chunks to it (repair job).

    ``new_model`` allows naming a model that has no versions yet (the import dialog sets the
    policy of the model it is about to create); there is then nothing to convert.
    """
    parsed = Policy.parse(policy)
    repo = ws.repo
    with repo.writer(lock_timeout, ctx=ctx):
        policies, exists = _policies_with(ws, parsed, model, new_model)
        if model is not None and not exists:
            repo.save_policies(policies)
            nothing = RepairReport(0, 0, 0, 0, (), ())
            return PolicyChange(parsed, model, nothing, Changes(frozenset({model})))
        # Converting removes pieces: not while metadata or a device's identity is in doubt.
        refuse_on_doubt(ws, f"convert to {parsed}", writes=False, unmounted=False)
        plan = plan_policy(ws, policies, parsed)  # refused before the policy is saved
        repo.chunks.require_room(plan.write_bytes, f"converting to {parsed}")
        repo.save_policies(policies)
        report = repair(ws, ctx=ctx, lock_timeout=lock_timeout)
        # The default is the policy of every model without its own.
        governed = {model} if model is not None else set(repo.model_names()) - set(policies.models)
    done = report.changes
    changes = Changes(frozenset(governed) | done.models, done.versions, storage=True)
    return PolicyChange(parsed, model, report, changes)


def preview_policy(ws: Workspace, policy: str, model: str | None = None) -> PolicyPlan:
    """What ``set_policy`` would write and remove, and whether the devices can take it."""
    parsed = Policy.parse(policy)
    policies, _exists = _policies_with(ws, parsed, model, new_model=False)
    return plan_policy(ws, policies, parsed)


def _policies_with(
    ws: Workspace, parsed: Policy, model: str | None, new_model: bool
) -> tuple[Policies, bool]:
    """The repository's policies with ``parsed`` set (for ``model``, or as the default), and
    whether that model has versions; refused when too few devices can take the pieces."""
    repo = ws.repo
    repo.chunks.refresh()
    usable = repo.chunks.placeable_count()
    if usable < parsed.pieces:
        raise UserError(
            f"policy {parsed} needs {parsed.pieces} devices that can take data; the "
            f"repository has {usable} ({repo.chunks.why_short()}). Add devices first."
        )
    codecs = dict(repo.policies.codecs)
    if model is None:
        return Policies(parsed, dict(repo.policies.models), codecs), True
    check_model_name(model)
    exists = bool(repo.version_numbers(model))
    if not exists and not new_model:
        raise NotFoundError(f"no model named {model!r}")
    models = dict(repo.policies.models, **{model: parsed})
    return Policies(repo.policies.default, models, codecs), exists


@dataclass(frozen=True)
class CodecChange:
    """The codec new chunks of ``model`` (None: the repository) get now, and what to refresh:
    the models whose Overview shows it."""

    settings: CodecSettings
    model: str | None
    changes: Changes

    def to_json(self) -> dict[str, object]:
        return {"model": self.model, "codec": self.settings.name, "level": self.settings.level}


def set_codec(
    ws: Workspace,
    settings: CodecSettings,
    model: str | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> CodecChange:
    """Set the codec new chunks get, for the repository or one model.

    Chunks already stored keep their encoding; ``recompress`` converts them.
    """
    repo = ws.repo
    with repo.writer(lock_timeout):
        if model is not None:
            check_model_name(model)
            if not repo.version_numbers(model):
                raise NotFoundError(f"no model named {model!r}")
        codecs = dict(repo.policies.codecs, **{model or "*": settings})
        policies = Policies(repo.policies.default, dict(repo.policies.models), codecs)
        repo.save_policies(policies)
        models = frozenset({model} if model is not None else repo.model_names())
    return CodecChange(settings, model, Changes(models=models))
