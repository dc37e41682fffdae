"""Reads: which credentials and models a user may see or use."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404

from workspaces.models import Membership, Role

from .adapters import adapter_for
from .models import (
    CatalogModel,
    ModelAlias,
    ProviderCredential,
    Scope,
    WorkspaceCredentialSetting,
    WorkspaceModelSetting,
)

SCOPE_RANK = {Scope.USER: 0, Scope.WORKSPACE: 1, Scope.GLOBAL: 2}


def _is_member(user, workspace) -> bool:
    if user is None or workspace is None or not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, workspace=workspace).exists()


def credentials_usable_by(*, user, workspace) -> list[ProviderCredential]:
    """Enabled credentials a user may call models with, in precedence order: their own keys,
    then the workspace's, then the global ones the workspace has not switched off. `user` may
    be None (a workspace-scoped API key)."""
    query = Q(scope=Scope.GLOBAL)
    if user is not None and user.is_authenticated:
        query |= Q(scope=Scope.USER, user=user)
    if workspace is not None and (user is None or _is_member(user, workspace)):
        query |= Q(scope=Scope.WORKSPACE, workspace=workspace)
    credentials = list(ProviderCredential.objects.filter(query, enabled=True))
    if workspace is not None:
        disabled = set(
            WorkspaceCredentialSetting.objects.filter(
                workspace=workspace, enabled=False
            ).values_list("credential_id", flat=True)
        )
        credentials = [c for c in credentials if c.id not in disabled]
    credentials.sort(key=lambda c: (SCOPE_RANK[Scope(c.scope)], c.id))
    return credentials


def credential_list_for(*, user, workspace=None):
    """Credentials shown on the settings page: the user's own, or one workspace's."""
    if workspace is not None:
        return ProviderCredential.objects.filter(scope=Scope.WORKSPACE, workspace=workspace)
    return ProviderCredential.objects.filter(scope=Scope.USER, user=user)


def global_credentials_for_workspace(*, workspace) -> list[tuple[ProviderCredential, bool]]:
    """Every enabled global credential with whether the workspace uses it."""
    disabled = set(
        WorkspaceCredentialSetting.objects.filter(workspace=workspace, enabled=False).values_list(
            "credential_id", flat=True
        )
    )
    return [
        (c, c.id not in disabled)
        for c in ProviderCredential.objects.filter(scope=Scope.GLOBAL, enabled=True)
    ]


def credential_get_for_user(*, user, credential_id: int, manage: bool = False):
    """The access helper for one credential on the settings pages. 404 when the user may not
    see it (so a foreign key is indistinguishable from a missing one), 403 when they may see
    it but `manage` needs a role they lack."""
    credential = ProviderCredential.objects.filter(id=credential_id).first()
    if credential is None or not user.is_authenticated:
        raise Http404
    if credential.scope == Scope.USER:
        if credential.user_id != user.id:
            raise Http404
        return credential
    if credential.scope == Scope.WORKSPACE:
        membership = Membership.objects.filter(
            user=user, workspace_id=credential.workspace_id
        ).first()
        if membership is None:
            raise Http404
        if manage and not membership.has_role(Role.ADMIN):
            raise PermissionDenied
        return credential
    if not user.is_staff:
        raise Http404
    return credential


def workspace_models_switched_off(*, workspace) -> set[int]:
    """Catalog model ids the workspace's admins switched off."""
    if workspace is None:
        return set()
    return set(
        WorkspaceModelSetting.objects.filter(workspace=workspace, enabled=False).values_list(
            "catalog_model_id", flat=True
        )
    )


def global_models_for_workspace(*, workspace) -> list[tuple[CatalogModel, bool]]:
    """Every enabled model of the global credentials the workspace uses, with whether the
    workspace allows it."""
    credentials = [c for c, used in global_credentials_for_workspace(workspace=workspace) if used]
    off = workspace_models_switched_off(workspace=workspace)
    models = (
        CatalogModel.objects.filter(credential__in=credentials, enabled=True)
        .select_related("credential")
        .order_by("credential__name", "model_id")
    )
    return [(m, m.id not in off) for m in models]


def model_label_with_credential(*, model_label: str, credential_name: str) -> str:
    """A model as menus and messages name it: "gpt-4o (Team key)", telling apart the same model
    through several keys; the model's name alone when the key is called the same (the offline
    demo), rather than "Offline demo (Offline demo)"."""
    if model_label.strip().casefold() == credential_name.strip().casefold():
        return model_label
    return f"{model_label} ({credential_name})"


def temperature_range_for(*, kinds) -> tuple[float, float] | None:
    """The temperatures a model reached through providers of these kinds can take: None when
    one of them takes any, else from the lowest lower bound to the highest upper one (routing
    skips the candidates that refuse a temperature and goes on with the others)."""
    ranges = [adapter_for(kind).temperature_range for kind in kinds]
    if not ranges or any(r is None for r in ranges):
        return None
    return (min(r[0] for r in ranges), max(r[1] for r in ranges))


def model_choices_for(*, user, workspace) -> list[dict]:
    """What a user may pick in a model menu: aliases first, then each enabled catalog model of
    every usable credential. Each item: {"value", "label", "group", "temperature_range"};
    `value` is what `routing.candidates_resolve(model=...)` takes, `temperature_range` what
    `temperature_range_for` says of its providers."""
    credentials = credentials_usable_by(user=user, workspace=workspace)
    usable = {c.id for c in credentials}
    choices: list[dict] = []
    aliases = ModelAlias.objects.filter(enabled=True).filter(
        Q(workspace__isnull=True) | Q(workspace=workspace)
    )
    kinds = {c.id: c.kind for c in credentials}
    seen: set[str] = set()
    # Workspace aliases first so they shadow global ones of the same name.
    for alias in sorted(
        aliases.prefetch_related("targets"), key=lambda a: (a.workspace_id is None, a.name)
    ):
        if alias.name in seen:
            continue
        reachable = [t for t in alias.targets.all() if t.credential_id in usable]
        if reachable:
            seen.add(alias.name)
            choices.append(
                {
                    "value": alias.name,
                    "label": alias.description or alias.name,
                    "group": "aliases",
                    "temperature_range": temperature_range_for(
                        kinds=[kinds[t.credential_id] for t in reachable]
                    ),
                }
            )
    choices.sort(key=lambda c: c["value"])
    rank = {c.id: i for i, c in enumerate(credentials)}
    names = {c.id: c.name for c in credentials}
    models = CatalogModel.objects.filter(credential_id__in=usable, enabled=True).exclude(
        id__in=workspace_models_switched_off(workspace=workspace)
    )
    for model in sorted(models, key=lambda m: (rank[m.credential_id], m.label.lower())):
        choices.append(
            {
                "value": f"{model.credential_id}:{model.model_id}",
                "label": model_label_with_credential(
                    model_label=model.label, credential_name=names[model.credential_id]
                ),
                "group": names[model.credential_id],
                "temperature_range": temperature_range_for(kinds=[kinds[model.credential_id]]),
            }
        )
    return choices
