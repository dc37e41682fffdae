from django.contrib import admin

from .models import PromptTemplate


@admin.register(PromptTemplate)
class PromptTemplateAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "owner", "updated_by", "updated_at"]
    list_filter = ["workspace"]
    search_fields = ["title", "body", "workspace__name", "owner__email"]
    autocomplete_fields = ["workspace", "owner"]
