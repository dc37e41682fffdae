from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api.handlers import routes_register

        from .api import ROUTES

        routes_register(ROUTES)
