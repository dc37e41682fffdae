from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat_home, name="home"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="chat_conversation"),
    path("c/<int:conversation_id>/thread/", views.conversation_thread, name="chat_thread"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="chat_rename"),
    path("c/<int:conversation_id>/pin/", views.conversation_pin, name="chat_pin"),
    path("c/<int:conversation_id>/delete/", views.conversation_delete, name="chat_delete"),
    path("c/<int:conversation_id>/settings/", views.conversation_settings, name="chat_settings"),
    path("c/<int:conversation_id>/branch/", views.branch_select, name="chat_branch"),
    path("c/<int:conversation_id>/export.<str:fmt>", views.conversation_export, name="chat_export"),
    path("chat/sidebar/", views.sidebar, name="chat_sidebar"),
]
