from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from .models import User
from .signals import user_language_changed

SITE_NAME = "AURAX"


@transaction.atomic
def user_update_preferences(
    *,
    user: User,
    theme: str | None = None,
    language: str | None = None,
    default_model: str | None = None,
) -> User:
    fields = []
    for name, value in (("theme", theme), ("language", language), ("default_model", default_model)):
        if value is not None:
            setattr(user, name, value)
            fields.append(name)
    if fields:
        # The stored language, not the instance's: a form bound to it has already set the new.
        saved_language = (
            User.objects.filter(pk=user.pk).values_list("language", flat=True).first()
            if language is not None
            else None
        )
        user.full_clean(validate_unique=False, exclude=["password"])
        user.save(update_fields=fields)
        if language is not None and language != saved_language:
            user_language_changed_announce(user=user)
    return user


def user_language_changed_announce(*, user: User) -> None:
    """Tell the user's open pages (the chat's sockets) of the language just saved, once the
    transaction that saved it commits: from the preferences, or from the admin site."""
    language = user.language
    transaction.on_commit(
        lambda: user_language_changed.send(sender=User, user=user, language=language),
        robust=True,
    )


def site_sync(*, using: str = "default") -> None:
    """The current Site row (SITE_ID) names AURAX at SITE_URL's host and port: allauth's
    e-mails take their subject prefix, greeting and links from it, and django.contrib.sites
    would otherwise leave them saying "example.com"."""
    from django.contrib.sites.models import Site

    domain = urlsplit(settings.SITE_URL).netloc.rpartition("@")[2]
    with transaction.atomic(using=using):
        site, _ = Site.objects.using(using).get_or_create(
            pk=settings.SITE_ID, defaults={"domain": domain, "name": SITE_NAME}
        )
        if (site.domain, site.name) != (domain, SITE_NAME):
            site.domain, site.name = domain, SITE_NAME
            # save(), not update(): saving clears the process's cache of the current Site.
            site.save(using=using)
