from django import forms
from django.contrib import admin
from django.contrib.admin.utils import NestedObjects, get_deleted_objects
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import router
from django.utils.translation import gettext_lazy as _

from .models import User, email_normalize
from .signals import user_deletion_requested


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
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def get_deleted_objects(self, objs, request):
        """The confirmation page lists, besides the users' own rows, what goes with them in the
        apps below (their personal workspaces and everything in those), as deleting does."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        user_ids = [user.pk for user in objs]
        by_model: dict[type, list] = {}
        for _receiver, found in user_deletion_requested.send(sender=User, user_ids=user_ids):
            for obj in found or []:
                by_model.setdefault(type(obj), []).append(obj)
        if not by_model:
            return deleted, counts, perms_needed, protected
        # Counted once each, though a user's own rows are also in their workspace's.
        everything = NestedObjects(using=router.db_for_write(User))
        everything.collect(list(objs))
        for found in by_model.values():
            more, _counts, more_perms, more_protected = get_deleted_objects(
                found, request, self.admin_site
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
