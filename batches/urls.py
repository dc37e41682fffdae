from django.urls import path

from . import views

urlpatterns = [
    path("batches/", views.batch_list, name="batches"),
    path("batches/files/<str:file_id>/", views.batch_file_download, name="batch_file"),
    path("batches/<str:batch_id>/cancel/", views.batch_cancel_view, name="batch_cancel"),
]
