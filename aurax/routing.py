from chat.routing import websocket_urlpatterns as chat_websocket_urlpatterns
from compare.routing import websocket_urlpatterns as compare_websocket_urlpatterns

websocket_urlpatterns: list = [*chat_websocket_urlpatterns, *compare_websocket_urlpatterns]
