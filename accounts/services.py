from django.db import transaction

from .models import User


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
        user.full_clean(validate_unique=False, exclude=["password"])
        user.save(update_fields=fields)
    return user
