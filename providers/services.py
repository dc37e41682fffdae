"""Writes: credentials, catalogs, workspace enablement, environment sync."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from workspaces.models import Role
from workspaces.services import audit_record

from .adapters import adapter_for
from .adapters.demo import DEMO_MODEL
from .circuit import circuit_reset
from .crypto import secret_encrypt
from .http import run_blocking
from .models import (
    AliasTarget,
    CatalogModel,
    ModelAlias,
    ProviderCredential,
    Scope,
    WorkspaceCredentialSetting,
    WorkspaceModelSetting,
)
from .netguard import UnsafeURL, address_check, trusted_default
from .routing import ROUTING_GENERATION, generation_bump
from .types import ModelInfo, ProviderError, Target

logger = logging.getLogger(__name__)

# env var prefix -> (kind, display name); <PREFIX>_API_KEY and <PREFIX>_BASE_URL are read.
ENVIRONMENT_PROVIDERS = {
    "OPENAI": ("openai", "OpenAI"),
    "ANTHROPIC": ("anthropic", "Anthropic"),
    "GEMINI": ("gemini", "Google Gemini"),
    "OLLAMA": ("ollama", "Ollama"),
    "MISTRAL": ("mistral", "Mistral"),
    "GROQ": ("groq", "Groq"),
    "XAI": ("xai", "xAI (Grok)"),
    "OPENROUTER": ("openrouter", "OpenRouter"),
    "DEEPSEEK": ("deepseek", "DeepSeek"),
    "TOGETHER": ("together", "Together"),
}
DEMO_ENV_SOURCE = "demo"


# --- Routing cache invalidation ----------------------------------------------------------


def routing_changed() -> None:
    """Every process drops its cached candidates (providers.routing): a credential, catalog
    row, alias, workspace switch or membership changed."""
    generation_bump(ROUTING_GENERATION)


def _routing_rows_changed(sender, **kwargs) -> None:
    routing_changed()


# Model signals rather than calls in each service, so admin saves, inlines and deletes
# cascading from a workspace or user invalidate too; they do nothing else.
def _routing_signals_connect() -> None:
    from django.db.models.signals import post_delete, post_save

    from workspaces.models import Membership

    for model in (
        ProviderCredential,
        CatalogModel,
        ModelAlias,
        AliasTarget,
        WorkspaceCredentialSetting,
        WorkspaceModelSetting,
        Membership,
    ):
        post_save.connect(
            _routing_rows_changed, sender=model, dispatch_uid=f"routing:{model.__name__}:save"
        )
        post_delete.connect(
            _routing_rows_changed, sender=model, dispatch_uid=f"routing:{model.__name__}:delete"
        )


_routing_signals_connect()


# --- Credentials -------------------------------------------------------------------------


def credential_validate(
    *, actor, scope: str, kind: str, base_url: str, allow_private_network: bool
) -> None:
    """Raise ValidationError/PermissionDenied for a credential that must not be saved."""
    adapter = adapter_for(kind)
    if not base_url and not adapter.default_base_url and adapter.needs_network:
        raise ValidationError({"base_url": _("This provider needs a base URL.")})
    is_admin = actor is None or actor.is_staff
    if allow_private_network and not is_admin:
        raise PermissionDenied(_("Only administrators may allow private network addresses."))
    # Global credentials are admin-made; others must not reach into the server's own network.
    url = base_url or adapter.default_base_url
    if (
        scope != Scope.GLOBAL
        and not allow_private_network
        and adapter.needs_network
        and not trusted_default(url, adapter.default_base_url)
    ):
        try:
            address_check(url)
        except UnsafeURL as exc:
            raise ValidationError({"base_url": str(exc)}) from None


def _set_api_key(credential: ProviderCredential, api_key: str) -> None:
    api_key = api_key.strip()
    credential.api_key_encrypted = secret_encrypt(api_key)
    credential.api_key_last4 = api_key[-4:] if len(api_key) >= 8 else ""


def credential_create(
    *,
    actor,
    scope: str,
    kind: str,
    name: str,
    api_key: str = "",
    base_url: str = "",
    workspace=None,
    user=None,
    allow_private_network: bool = False,
    enabled: bool = True,
    env_source: str = "",
    ip: str | None = None,
) -> ProviderCredential:
    """`actor` is the person making the change (None for the system: env sync, commands)."""
    credential_validate(
        actor=actor,
        scope=scope,
        kind=kind,
        base_url=base_url,
        allow_private_network=allow_private_network,
    )
    credential = ProviderCredential(
        scope=scope,
        kind=kind,
        name=name,
        base_url=base_url,
        workspace=workspace if scope == Scope.WORKSPACE else None,
        user=user if scope == Scope.USER else None,
        allow_private_network=allow_private_network,
        enabled=enabled,
        env_source=env_source,
    )
    _set_api_key(credential, api_key)
    with transaction.atomic():
        credential.save()
        _credential_audit(credential, actor=actor, action="credential.create", ip=ip)
        transaction.on_commit(lambda: _catalog_refresh_later(credential.id))
    return credential


def _credential_audit(credential: ProviderCredential, *, actor, action: str, ip) -> None:
    """A workspace key's changes go in its workspace's audit log (the key itself never)."""
    if credential.scope == Scope.WORKSPACE:
        audit_record(
            workspace=credential.workspace,
            actor=actor,
            action=action,
            target=credential,
            data={"kind": credential.kind},
            ip=ip,
        )


def credential_update(
    *,
    credential: ProviderCredential,
    actor,
    name: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    allow_private_network: bool | None = None,
    enabled: bool | None = None,
) -> ProviderCredential:
    """Change what is given; `api_key=None` (or "") keeps the stored key."""
    new_base_url = credential.base_url if base_url is None else base_url
    new_private = (
        credential.allow_private_network if allow_private_network is None else allow_private_network
    )
    private_changed = new_private != credential.allow_private_network
    if private_changed and new_private and actor is not None and not actor.is_staff:
        raise PermissionDenied(_("Only administrators may allow private network addresses."))
    credential_validate(
        actor=None,  # the admin-only part was checked just above
        scope=credential.scope,
        kind=credential.kind,
        base_url=new_base_url,
        allow_private_network=new_private,
    )
    connection_changed = new_base_url != credential.base_url or bool(api_key)
    credential.base_url = new_base_url
    credential.allow_private_network = new_private
    if name is not None:
        credential.name = name
    if enabled is not None:
        credential.enabled = enabled
    if api_key:
        _set_api_key(credential, api_key)
    with transaction.atomic():
        credential.save()
        if connection_changed:
            transaction.on_commit(lambda: circuit_reset(credential.id))
            transaction.on_commit(lambda: _catalog_refresh_later(credential.id))
    return credential


def credential_save(
    *, credential: ProviderCredential, actor, api_key: str | None = None
) -> ProviderCredential:
    """Save a credential edited field by field (the admin form); `api_key` replaces the
    stored key when given. The caller has run `credential_validate`."""
    if api_key:
        _set_api_key(credential, api_key)
    with transaction.atomic():
        credential.save()
        transaction.on_commit(lambda: circuit_reset(credential.id))
        transaction.on_commit(lambda: _catalog_refresh_later(credential.id))
    return credential


def credential_delete(*, credential: ProviderCredential, actor=None, ip: str | None = None) -> None:
    credential_id = credential.id
    with transaction.atomic():
        _credential_audit(credential, actor=actor, action="credential.delete", ip=ip)
        credential.delete()
        transaction.on_commit(lambda: circuit_reset(credential_id))


def target_for(credential: ProviderCredential) -> Target:
    return Target(
        kind=credential.kind,
        base_url=credential.effective_base_url,
        api_key=credential.api_key,
        credential_id=credential.id,
        name=credential.name,
        allow_private_network=credential.allow_private_network or credential.scope == Scope.GLOBAL,
    )


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    message: str  # the taxonomy's user-safe message
    code: str = "ok"
    models: tuple[str, ...] = ()


async def credential_probe(target: Target) -> ConnectionReport:
    try:
        models = await adapter_for(target.kind).list_models(target)
    except ProviderError as error:
        return ConnectionReport(ok=False, message=str(error), code=error.code)
    return ConnectionReport(
        ok=True,
        message=ngettext(
            "Connected: %(count)d model available.",
            "Connected: %(count)d models available.",
            len(models),
        )
        % {"count": len(models)},
        models=tuple(m.id for m in models),
    )


def credential_test(*, credential_id: int) -> ConnectionReport:
    """Probe a credential by listing its models; records the outcome on the credential."""
    credential = ProviderCredential.objects.get(id=credential_id)
    report = run_blocking(credential_probe, target_for(credential))
    ProviderCredential.objects.filter(id=credential_id).update(
        last_status=report.code, last_checked_at=timezone.now()
    )
    return report


def workspace_credential_toggle(
    *, workspace, credential: ProviderCredential, enabled: bool, actor=None, ip: str | None = None
):
    """Offer or withhold one global credential in a workspace (admins)."""
    if credential.scope != Scope.GLOBAL:
        raise ValidationError(_("Only global credentials are switched per workspace."))
    with transaction.atomic():
        WorkspaceCredentialSetting.objects.update_or_create(
            workspace=workspace, credential=credential, defaults={"enabled": enabled}
        )
        audit_record(
            workspace=workspace,
            actor=actor,
            action="credential.enable" if enabled else "credential.disable",
            target=credential,
            data={"kind": credential.kind},
            ip=ip,
        )


def workspace_model_toggle(
    *, membership, catalog_model: CatalogModel, enabled: bool, ip: str | None = None
) -> None:
    """Allow or forbid one model of a global credential in a workspace (admins)."""
    if not membership.has_role(Role.ADMIN):
        raise PermissionDenied
    if catalog_model.credential.scope != Scope.GLOBAL:
        raise ValidationError(_("Only models of global credentials are switched per workspace."))
    with transaction.atomic():
        WorkspaceModelSetting.objects.update_or_create(
            workspace=membership.workspace,
            catalog_model=catalog_model,
            defaults={"enabled": enabled},
        )
        audit_record(
            workspace=membership.workspace,
            actor=membership.user,
            action="model.enable" if enabled else "model.disable",
            target=catalog_model,
            ip=ip,
        )


# --- Catalog -----------------------------------------------------------------------------


def price_lookup(kind: str, model_id: str) -> tuple[int | None, Decimal | None, Decimal | None]:
    """(context window, input $/Mtok, output $/Mtok) from genai-prices, Nones where unknown."""
    from genai_prices import data_snapshot

    provider_id = adapter_for(kind).price_provider_id
    try:
        _provider, model = data_snapshot.get_snapshot().find_provider_model(
            model_id, None, provider_id, None
        )
    except LookupError:
        return None, None, None
    prices = model.get_prices(datetime.now(UTC))

    def per_mtok(value):
        if isinstance(value, Decimal):
            return value
        return getattr(value, "base", None)  # tiered prices: the base tier

    return (
        model.context_window,
        per_mtok(getattr(prices, "input_mtok", None)),
        per_mtok(getattr(prices, "output_mtok", None)),
    )


def catalog_store(*, credential: ProviderCredential, models: list[ModelInfo]) -> int:
    """Upsert the listed models; admin choices (enabled, display name, prices) are kept."""
    existing = {m.model_id: m for m in credential.catalog_models.all()}
    listed = set()
    with transaction.atomic():
        for info in models:
            listed.add(info.id)
            row = existing.get(info.id)
            if row is None:
                window, price_in, price_out = price_lookup(credential.kind, info.id)
                CatalogModel.objects.create(
                    credential=credential,
                    model_id=info.id,
                    display_name=info.display_name,
                    context_window=info.context_window or window,
                    input_price_per_mtok=price_in,
                    output_price_per_mtok=price_out,
                )
            else:
                changed = not row.listed
                row.listed = True
                if row.context_window is None and info.context_window:
                    row.context_window = info.context_window
                    changed = True
                if changed:
                    row.save()
        CatalogModel.objects.filter(credential=credential, listed=True).exclude(
            model_id__in=listed
        ).update(listed=False)
        ProviderCredential.objects.filter(id=credential.id).update(
            catalog_refreshed_at=timezone.now()
        )
        routing_changed()
    return len(listed)


def catalog_refresh(credential_id: int) -> ConnectionReport:
    """List the credential's models from the provider and store them."""
    credential = ProviderCredential.objects.get(id=credential_id)
    target = target_for(credential)

    async def fetch():
        return await adapter_for(credential.kind).list_models(target)

    try:
        models = run_blocking(fetch)
    except ProviderError as error:
        ProviderCredential.objects.filter(id=credential_id).update(
            last_status=error.code, last_checked_at=timezone.now()
        )
        return ConnectionReport(ok=False, message=str(error), code=error.code)
    count = catalog_store(credential=credential, models=models)
    ProviderCredential.objects.filter(id=credential_id).update(
        last_status="ok", last_checked_at=timezone.now()
    )
    return ConnectionReport(
        ok=True,
        message=ngettext(
            "Catalog refreshed: %(count)d model.", "Catalog refreshed: %(count)d models.", count
        )
        % {"count": count},
        models=tuple(m.id for m in models),
    )


def _catalog_refresh_later(credential_id: int) -> None:
    from .tasks import catalog_refresh_one

    try:
        catalog_refresh_one.delay(credential_id)
    except Exception:  # a broker outage must not fail the save; the daily refresh catches up
        logger.warning("could not queue a catalog refresh for credential %s", credential_id)


# --- Environment -------------------------------------------------------------------------


def _env(name: str) -> str:
    if os.environ.get(name):
        return os.environ[name].strip()
    path = os.environ.get(f"{name}_FILE")
    return Path(path).read_text().strip() if path else ""


def credentials_from_environment() -> list[ProviderCredential]:
    """Create or update a global credential per provider configured by environment
    variables, then make sure the offline demo exists when nothing else is configured (or
    AURAX_DEMO_PROVIDER is set). Returns the credentials created or changed."""
    changed = []
    for prefix, (kind, label) in ENVIRONMENT_PROVIDERS.items():
        api_key = _env(f"{prefix}_API_KEY")
        base_url = _env(f"{prefix}_BASE_URL")
        # A base URL alone is enough for servers that take no key (Ollama, local OpenAI-likes).
        if not api_key and not (base_url and prefix in ("OPENAI", "OLLAMA")):
            continue
        credential = ProviderCredential.objects.filter(
            scope=Scope.GLOBAL, env_source=prefix
        ).first()
        if credential is None:
            credential = credential_create(
                actor=None,
                scope=Scope.GLOBAL,
                kind=kind,
                name=label,
                api_key=api_key,
                base_url=base_url,
                allow_private_network=True,
                env_source=prefix,
            )
            changed.append(credential)
        elif credential.api_key != api_key or credential.base_url != base_url:
            changed.append(
                credential_update(
                    credential=credential, actor=None, base_url=base_url, api_key=api_key or None
                )
            )
    demo_credential_sync()
    return changed


def demo_credential_sync() -> ProviderCredential | None:
    """The offline demo credential is enabled when no other provider is configured or when
    AURAX_DEMO_PROVIDER is set, and disabled otherwise."""
    others = (
        ProviderCredential.objects.filter(scope=Scope.GLOBAL, enabled=True)
        .exclude(kind="demo")
        .exists()
    )
    wanted = settings.AURAX_DEMO_PROVIDER or not others
    demo = ProviderCredential.objects.filter(scope=Scope.GLOBAL, env_source=DEMO_ENV_SOURCE).first()
    if demo is None and not wanted:
        return None
    with transaction.atomic():
        if demo is None:
            demo = ProviderCredential.objects.create(
                scope=Scope.GLOBAL,
                kind="demo",
                name=adapter_for("demo").label,
                env_source=DEMO_ENV_SOURCE,
                enabled=True,
            )
        elif demo.enabled != wanted:
            demo.enabled = wanted
            demo.save(update_fields=["enabled", "updated_at"])
        CatalogModel.objects.get_or_create(
            credential=demo,
            model_id=DEMO_MODEL,
            defaults={"display_name": "Offline demo", "context_window": 8192},
        )
    return demo
