from django.urls import path, re_path

from . import views

urlpatterns = [
    path("chat/completions", views.chat_completions, name="v1_chat_completions"),
    path("models", views.models, name="v1_models"),
    path("embeddings", views.embeddings, name="v1_embeddings"),
    path("messages", views.messages, name="v1_messages"),
    path("openapi.json", views.openapi, name="v1_openapi"),
    re_path(r"^(?P<path>.*)$", views.not_found),
]
