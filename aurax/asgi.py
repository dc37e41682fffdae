import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aurax.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from api.asgi import application as api_app  # noqa: E402
from aurax.routing import websocket_urlpatterns  # noqa: E402


async def http_app(scope, receive, send):
    """/v1 (the OpenAI-compatible API) is served by its own lean ASGI app; the rest by Django."""
    if scope["path"].startswith("/v1/") or scope["path"] == "/v1":
        return await api_app(scope, receive, send)
    return await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
