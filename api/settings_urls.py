from django.urls import path

from . import settings_views

urlpatterns = [
    path("api-keys/", settings_views.api_keys, name="api_keys"),
    path(
        "api-keys/<int:key_id>/revoke/", settings_views.api_key_revoke_view, name="api_key_revoke"
    ),
    path("api-docs/", settings_views.api_docs, name="api_docs"),
]
