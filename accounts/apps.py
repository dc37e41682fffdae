from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _site_sync_after_migrate(sender, using, **kwargs):
    from .services import site_sync

    site_sync(using=using)


class AccountsConfig(AppConfig):
    name = "accounts"
    # Not "Accounts": allauth's account app (email addresses) already has that name, and
    # the admin would list two sections called the same.
    verbose_name = _("Users")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Every `migrate` (each start, each test database, each flush) sets the Site from
        # SITE_URL, after django.contrib.sites (listed before accounts) created its row.
        post_migrate.connect(
            _site_sync_after_migrate, sender=self, dispatch_uid="accounts.site_sync"
        )
