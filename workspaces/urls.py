from django.urls import path

from . import views

urlpatterns = [
    path("w/", views.workspace_list, name="workspace_list"),
    path("w/switch/", views.workspace_switch, name="workspace_switch"),
    path("w/<slug:slug>/", views.workspace_members, name="workspace_members"),
    path("w/<slug:slug>/settings/", views.workspace_settings, name="workspace_settings"),
    path("w/<slug:slug>/delete/", views.workspace_delete, name="workspace_delete"),
    path("w/<slug:slug>/leave/", views.workspace_leave, name="workspace_leave"),
    path("w/<slug:slug>/transfer/", views.workspace_transfer, name="workspace_transfer"),
    path("w/<slug:slug>/members/<int:member_id>/role/", views.member_role, name="member_role"),
    path(
        "w/<slug:slug>/members/<int:member_id>/remove/", views.member_remove, name="member_remove"
    ),
    path("w/<slug:slug>/invitations/", views.invitation_create, name="invitation_create"),
    path(
        "w/<slug:slug>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("w/<slug:slug>/audit/", views.audit_log, name="workspace_audit"),
    path("invite/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
