from django.apps import AppConfig


class BatchesConfig(AppConfig):
    name = "batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from api.handlers import routes_register
        from api.openapi import paths_register

        from .api import ANSWER_SCHEMAS, OPENAPI_PATHS, ROUTES, BatchCreateRequest

        routes_register(ROUTES)
        paths_register(OPENAPI_PATHS, {"BatchCreateRequest": BatchCreateRequest, **ANSWER_SCHEMAS})
