from django.urls import path

from . import views

app_name = "providers"

urlpatterns = [
    path("", views.keys, name="keys"),
    path("workspace/<slug:slug>/", views.workspace_keys, name="workspace_keys"),
    path(
        "workspace/<slug:slug>/global/<int:credential_id>/",
        views.workspace_global_toggle,
        name="workspace_global_toggle",
    ),
    path(
        "workspace/<slug:slug>/models/<int:model_id>/",
        views.workspace_model_toggle_view,
        name="workspace_model_toggle",
    ),
    path("<int:credential_id>/test/", views.credential_test_view, name="credential_test"),
    path("<int:credential_id>/refresh/", views.credential_refresh_view, name="credential_refresh"),
    path("<int:credential_id>/delete/", views.credential_delete_view, name="credential_delete"),
]
