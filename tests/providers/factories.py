from providers.models import CatalogModel, ProviderCredential, Scope
from providers.services import credential_create


def credential(
    *,
    scope=Scope.GLOBAL,
    kind="openai",
    name=None,
    api_key="sk-test-key-1234",
    base_url="",
    workspace=None,
    user=None,
    models=(),
    enabled=True,
):
    """A credential made by the system (no SSRF check: tests point at loopback)."""
    made = credential_create(
        actor=None,
        scope=scope,
        kind=kind,
        name=name or f"{kind} {scope}",
        api_key=api_key,
        base_url=base_url,
        workspace=workspace,
        user=user,
        allow_private_network=True,
        enabled=enabled,
    )
    for model_id in models:
        CatalogModel.objects.create(credential=made, model_id=model_id)
    return made


__all__ = ["ProviderCredential", "credential"]
