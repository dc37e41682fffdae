from django.urls import path

from .consumers import CompareConsumer

websocket_urlpatterns = [path("ws/compare/", CompareConsumer.as_asgi())]
