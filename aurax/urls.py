from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from . import health, views

handler403 = "aurax.views.permission_denied"
handler404 = "aurax.views.page_not_found"
handler500 = "aurax.views.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("settings/keys/", include("providers.urls")),
    path("settings/", include("accounts.urls")),
    path("settings/", include("api.settings_urls")),
    path("settings/", include("batches.urls")),
    path("prompts/", include("prompts.urls")),
    path("compare/", include("compare.urls")),
    path("", include("workspaces.urls")),
    path("", include("billing.urls")),
    path("", include("chat.urls")),
]

if settings.DEBUG:
    urlpatterns += [path("__errors/<int:code>/", views.error_preview)]
