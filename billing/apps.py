from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from providers.routing import generation_bump

        from .models import Budget, ModelPriceOverride, RateLimit
        from .pricing import BILLING_RULES_GENERATION

        # Only cache invalidation: budgets, limits and prices are cached per process on the
        # request path; any save or delete (admin, services, cascades) makes every process
        # reload them.
        def rules_changed(sender, **kwargs):
            generation_bump(BILLING_RULES_GENERATION)

        for model in (Budget, RateLimit, ModelPriceOverride):
            post_save.connect(
                rules_changed,
                sender=model,
                weak=False,
                dispatch_uid=f"billing-rules:{model.__name__}:save",
            )
            post_delete.connect(
                rules_changed,
                sender=model,
                weak=False,
                dispatch_uid=f"billing-rules:{model.__name__}:delete",
            )
