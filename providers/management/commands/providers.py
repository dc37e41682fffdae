"""`manage.py providers check` probes every credential and prints its models and status;
`manage.py providers sync-env` turns provider environment variables into global credentials
(run at setup, before serving)."""

from django.core.management.base import BaseCommand

from providers.circuit import circuit_state
from providers.crypto import SecretUnreadable
from providers.http import run_blocking
from providers.models import ProviderCredential
from providers.services import (
    catalog_refresh,
    credential_probe,
    credentials_from_environment,
    target_for,
)


class Command(BaseCommand):
    help = "Provider credentials: check them, or sync them from the environment."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="Probe every credential, list its models.")
        check.add_argument("--refresh", action="store_true", help="Also store the catalogs.")
        sub.add_parser("sync-env", help="Create/update global credentials from env vars.")

    def handle(self, *args, action, **options):
        if action == "sync-env":
            changed = credentials_from_environment()
            for credential in changed:
                self.stdout.write(f"synced {credential.kind} credential “{credential.name}”")
            if options["verbosity"] and not changed:
                self.stdout.write("provider credentials already match the environment")
            return
        self.credentials_check(refresh=options.get("refresh", False))

    def credentials_check(self, *, refresh: bool):
        credentials = ProviderCredential.objects.select_related("workspace", "user")
        if not credentials:
            self.stdout.write("no provider credentials; run `manage.py providers sync-env`")
            return
        failures = 0
        for credential in credentials:
            owner = credential.workspace or credential.user or "global"
            head = (
                f"#{credential.id} {credential.name} [{credential.kind}, {credential.scope}: "
                f"{owner}] key {credential.api_key_masked} "
                f"{'enabled' if credential.enabled else 'disabled'}, "
                f"circuit {circuit_state(credential.id).state}"
            )
            try:
                target = target_for(credential)
            except SecretUnreadable:
                failures += 1
                self.stdout.write(self.style.ERROR(f"{head}\n  key unreadable: re-enter it"))
                continue
            report = run_blocking(credential_probe, target)
            if refresh and report.ok:
                catalog_refresh(credential.id)
            style = self.style.SUCCESS if report.ok else self.style.ERROR
            failures += not report.ok
            self.stdout.write(f"{head}\n  {style(report.message)}")
            for model in report.models:
                self.stdout.write(f"    {model}")
        if failures:
            self.stdout.write(self.style.WARNING(f"{failures} credential(s) failing"))
