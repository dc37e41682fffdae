from django import template

from accounts.stored_names import stored_name_display

register = template.Library()


@register.filter
def stored_name(value):
    """{{ credential.name|stored_name }}: see accounts.stored_names."""
    return stored_name_display(value)
