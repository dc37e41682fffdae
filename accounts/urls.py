from django.urls import path

from . import views

urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("theme/", views.theme_set, name="theme_set"),
    path("language/", views.language_set, name="language_set"),
]
