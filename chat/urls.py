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
    path("c/<int:conversation_id>/share/", views.conversation_share, name="chat_share"),
    path("c/<int:conversation_id>/unshare/", views.conversation_unshare, name="chat_unshare"),
    path(
        "c/<int:conversation_id>/public-link/",
        views.public_link_create,
        name="chat_public_link_create",
    ),
    path(
        "c/<int:conversation_id>/public-link/revoke/",
        views.public_link_revoke,
        name="chat_public_link_revoke",
    ),
    path("c/<int:conversation_id>/copy/", views.conversation_copy, name="chat_copy"),
    path("p/<str:token>/", views.public_conversation, name="chat_public"),
    path(
        "p/<str:token>/files/<int:attachment_id>/",
        views.public_attachment_file,
        name="chat_public_attachment",
    ),
    path("chat/attachments/", views.attachment_upload, name="chat_attachment_upload"),
    path("chat/attachments/<int:attachment_id>/", views.attachment_file, name="chat_attachment"),
    path(
        "chat/attachments/<int:attachment_id>/delete/",
        views.attachment_delete,
        name="chat_attachment_delete",
    ),
    path("chat/sidebar/", views.sidebar, name="chat_sidebar"),
    path("chat/estimate/", views.input_estimate, name="chat_input_estimate"),
]
