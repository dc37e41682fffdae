from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db import transaction

        from workspaces.signals import member_removed, response_cache_switched

        from .services import api_keys_changed

        # A removed member's keys stop working on every server once the removal commits.
        member_removed.connect(
            lambda **kwargs: transaction.on_commit(api_keys_changed, robust=True),
            dispatch_uid="api_keys_member_removed",
            weak=False,
        )
        # A key keeps its workspace for a few seconds (api.auth): a workspace whose response
        # cache was turned off or on is read again by every server at once.
        response_cache_switched.connect(
            lambda **kwargs: api_keys_changed(),
            dispatch_uid="api_keys_response_cache_switched",
            weak=False,
        )
