from django import forms
from django.contrib import admin
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import NestedObjects, quote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import router
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from .models import User, email_normalize
from .services import user_language_changed_announce
from .signals import user_deletion_requested, user_deletion_spared


class EmailInAnyCase:
    """Bob@Example.com and bob@example.com are one address: stored in lower case, and taken
    whatever the case it was typed in."""

    def clean_email(self):
        email = email_normalize(self.cleaned_data["email"])
        if User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("A user with this email address already exists."))
        return email


class UserCreationAdminForm(EmailInAnyCase, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ["email"]
        field_classes = {}


class UserChangeAdminForm(EmailInAnyCase, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"  # noqa: DJ007 - the fieldsets choose the fields
        field_classes = {}


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "theme", "language"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name")}),
        (_("Preferences"), {"fields": ("theme", "language", "default_model")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    actions = ["delete_selected"]
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "language" in form.changed_data:
            user_language_changed_announce(user=obj)

    def get_deleted_objects(self, objs, request):
        """The confirmation page lists, besides the users' own rows, what goes with them in the
        apps below (their personal workspaces and everything in those), as deleting does; what
        passes to someone else instead (their shared conversations in a workspace that stays)
        is not among what goes."""
        user_ids = [user.pk for user in objs]
        spared = _spared_rows(user_ids)
        deleted, counts, perms_needed, protected = _deleted_objects(
            objs, request, self.admin_site, spared=spared
        )
        by_model: dict[type, list] = {}
        for _receiver, found in user_deletion_requested.send(sender=User, user_ids=user_ids):
            for obj in found or []:
                by_model.setdefault(type(obj), []).append(obj)
        if not by_model:
            return deleted, counts, perms_needed, protected
        # Counted once each, though a user's own rows are also in their workspace's.
        everything = _SparingCollector(using=router.db_for_write(User), spared=spared)
        everything.collect(list(objs))
        for found in by_model.values():
            more, _counts, more_perms, more_protected = _deleted_objects(
                found, request, self.admin_site, spared=spared
            )
            deleted += more
            perms_needed |= more_perms
            protected += more_protected
            everything.collect(found)
        counts = {
            model._meta.verbose_name_plural: len(rows)
            for model, rows in everything.model_objs.items()
        }
        return deleted, counts, perms_needed, protected

    def render_delete_form(self, request, context):
        context["spared_objects"] = [
            _object_label(obj) for obj in _spared_rows([context["object"].pk])
        ]
        return super().render_delete_form(request, context)

    @admin.action(
        permissions=["delete"], description=admin_actions.delete_selected.short_description
    )
    def delete_selected(self, request, queryset):
        response = admin_actions.delete_selected(self, request, queryset)
        if isinstance(response, TemplateResponse):  # the confirmation page, not the redirect
            response.context_data["spared_objects"] = [
                _object_label(obj) for obj in _spared_rows([user.pk for user in queryset])
            ]
        return response


def _spared_rows(user_ids) -> list:
    return [
        obj
        for _receiver, found in user_deletion_spared.send(sender=User, user_ids=user_ids)
        for obj in found or []
    ]


def _object_label(obj) -> str:
    return f"{capfirst(obj._meta.verbose_name)}: {obj}"


class _SparingCollector(NestedObjects):
    """Django's collector for the confirmation page, that leaves out the spared rows (and so
    what would only go with them)."""

    def __init__(self, *args, spared, **kwargs):
        super().__init__(*args, **kwargs)
        self.spared: dict[type, set] = {}
        for obj in spared:
            self.spared.setdefault(type(obj), set()).add(obj.pk)

    def related_objects(self, related_model, related_fields, objs):
        found = super().related_objects(related_model, related_fields, objs)
        spared = self.spared.get(related_model)
        return found.exclude(pk__in=spared) if spared else found


def _deleted_objects(objs, request, admin_site, *, spared):
    """`django.contrib.admin.utils.get_deleted_objects`, with a collector that spares rows."""
    objs = list(objs)
    if not objs:
        return [], {}, set(), []
    collector = _SparingCollector(using=router.db_for_write(type(objs[0])), spared=spared)
    collector.collect(objs)
    perms_needed = set()

    def format_callback(obj):
        opts = obj._meta
        if not admin_site.is_registered(type(obj)):
            return _object_label(obj)
        if not admin_site.get_model_admin(type(obj)).has_delete_permission(request, obj):
            perms_needed.add(opts.verbose_name)
        try:
            url = reverse(
                f"{admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[quote(obj.pk)],
            )
        except NoReverseMatch:
            return _object_label(obj)
        return format_html('{}: <a href="{}">{}</a>', capfirst(opts.verbose_name), url, obj)

    deleted = collector.nested(format_callback)
    protected = [format_callback(obj) for obj in collector.protected]
    counts = {
        model._meta.verbose_name_plural: len(rows) for model, rows in collector.model_objs.items()
    }
    return deleted, counts, perms_needed, protected
