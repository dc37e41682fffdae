from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    # Not "Accounts": allauth's account app (email addresses) already has that name, and
    # the admin would list two sections called the same.
    verbose_name = _("Users")
    default_auto_field = "django.db.models.BigAutoField"
