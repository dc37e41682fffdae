"""Re-encrypt every stored provider key under the first key of AURAX_ENCRYPTION_KEYS.

Rotation: put a new key first in AURAX_ENCRYPTION_KEYS (keeping the old one after it), restart,
run this command, then remove the old key."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from providers.crypto import SecretUnreadable, secret_rotate
from providers.models import ProviderCredential


class Command(BaseCommand):
    help = "Re-encrypt every provider API key with the newest encryption key."

    def handle(self, *args, **options):
        rotated, unreadable = 0, []
        with transaction.atomic():
            for credential in ProviderCredential.objects.select_for_update().exclude(
                api_key_encrypted=""
            ):
                try:
                    token = secret_rotate(credential.api_key_encrypted)
                except SecretUnreadable:
                    unreadable.append(credential.id)
                    continue
                ProviderCredential.objects.filter(id=credential.id).update(api_key_encrypted=token)
                rotated += 1
        self.stdout.write(f"re-encrypted {rotated} credential(s)")
        if unreadable:
            raise CommandError(
                "could not decrypt credential(s) "
                + ", ".join(map(str, unreadable))
                + " with any configured key; re-enter their keys"
            )
