from celery import shared_task

from .models import ProviderCredential


@shared_task
def catalog_refresh_all() -> int:
    """Queue a catalog refresh for every enabled credential."""
    ids = list(ProviderCredential.objects.filter(enabled=True).values_list("id", flat=True))
    for credential_id in ids:
        catalog_refresh_one.delay(credential_id)
    return len(ids)


@shared_task
def catalog_refresh_one(credential_id: int) -> None:
    from .services import catalog_refresh

    if ProviderCredential.objects.filter(id=credential_id).exists():
        catalog_refresh(credential_id)
