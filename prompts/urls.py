from django.urls import path

from . import views

urlpatterns = [
    path("", views.template_list, name="prompt_templates"),
    path("search/", views.template_search, name="prompt_template_search"),
    path("<int:template_id>/", views.template_edit, name="prompt_template_edit"),
    path("<int:template_id>/delete/", views.template_delete, name="prompt_template_delete"),
]
