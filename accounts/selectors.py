from .models import User
from .signals import user_models_requested
from .stored_names import stored_name_display


def user_model_choices(*, request) -> list[tuple[str, str]]:
    """The models the signed-in user may pick as their default, as (value, label)."""
    choices = []
    for _receiver, models in user_models_requested.send(sender=User, request=request):
        choices += [(m["value"], stored_name_display(m["label"])) for m in models or ()]
    return choices
