from .models import User
from .signals import user_models_requested


def user_model_choices(*, request) -> list[tuple[str, str]]:
    """The models the signed-in user may pick as their default, as (value, label)."""
    choices = []
    for _receiver, models in user_models_requested.send(sender=User, request=request):
        choices += [(m["value"], m["label"]) for m in models or ()]
    return choices
