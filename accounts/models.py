from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models, router, transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from .signals import user_deleting


def email_normalize(email: str) -> str:
    """Addresses are compared and stored in lower case: Bob@Example.com is bob@example.com."""
    return BaseUserManager.normalize_email(email.strip()).lower()


class UserQuerySet(models.QuerySet):
    def delete(self):
        if self.model is not User:  # a migration's historical model: no app is told
            return super().delete()
        with transaction.atomic(using=router.db_for_write(self.model)):
            user_deleting.send(sender=self.model, users=list(self))
            return super().delete()


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=email_normalize(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    class Theme(models.TextChoices):
        SYSTEM = "system", _("System")
        LIGHT = "light", _("Light")
        DARK = "dark", _("Dark")

    username = None
    email = models.EmailField(_("email address"), unique=True)
    theme = models.CharField(_("Theme"), max_length=10, choices=Theme.choices, default=Theme.SYSTEM)
    language = models.CharField(
        _("Language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        default="",
        help_text=_("Empty follows the browser."),
    )
    default_model = models.CharField(_("Default model"), max_length=200, blank=True, default="")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="unique_email_ignoring_case",
                violation_error_message=_("A user with this email address already exists."),
            )
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = email_normalize(self.email)

    def save(self, *args, **kwargs) -> None:
        # Every path (admin, shell, allauth, fixtures) stores the address in one case, so a
        # login in another case finds the same user.
        self.email = email_normalize(self.email or "")
        super().save(*args, **kwargs)

    def delete(self, using=None, keep_parents=False):
        # Before the cascade is collected: what receivers hand over (a workspace they owned, the
        # conversations they shared) must not be collected with the user's rows.
        with transaction.atomic(using=using or router.db_for_write(type(self))):
            user_deleting.send(sender=type(self), users=[self])
            return super().delete(using=using, keep_parents=keep_parents)
