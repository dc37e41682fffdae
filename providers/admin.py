from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .adapters import adapter_for
from .circuit import circuit_reset, circuit_states
from .models import AliasTarget, CatalogModel, ModelAlias, ProviderCredential
from .services import catalog_refresh, credential_save, credential_test, credential_validate


class ProviderCredentialForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("Base URL"), required=False, max_length=500, assume_scheme="https"
    )
    api_key = forms.CharField(
        label=_("API key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Write-only. Leave empty to keep the stored key."),
    )

    class Meta:
        model = ProviderCredential
        fields = [
            "scope",
            "workspace",
            "user",
            "kind",
            "name",
            "base_url",
            "api_key",
            "allow_private_network",
            "enabled",
        ]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        stored = self.instance.pk is not None and bool(self.instance.api_key)
        if adapter_for(data["kind"]).needs_api_key and not data.get("api_key") and not stored:
            self.add_error("api_key", _("This provider needs an API key."))
        try:
            credential_validate(
                actor=self.actor,
                scope=data["scope"],
                kind=data["kind"],
                base_url=data.get("base_url", ""),
                allow_private_network=data.get("allow_private_network", False),
            )
        except PermissionDenied as exc:
            raise ValidationError(str(exc)) from None
        return data


@admin.register(ProviderCredential)
class ProviderCredentialAdmin(admin.ModelAdmin):
    form = ProviderCredentialForm
    list_display = [
        "name",
        "kind",
        "scope",
        "owner",
        "masked_key",
        "enabled",
        "circuit",
        "last_status",
        "catalog_refreshed_at",
    ]
    list_filter = ["scope", "kind", "enabled", "last_status"]
    search_fields = ["name", "base_url", "workspace__name", "user__email"]
    autocomplete_fields = ["workspace", "user"]
    readonly_fields = ["masked_key", "last_status", "last_checked_at", "catalog_refreshed_at"]
    actions = ["test_connection", "refresh_catalog", "reset_circuit"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class WithActor(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, actor=request.user, **inner)

        return WithActor

    def save_model(self, request, obj, form, change):
        credential_save(
            credential=obj, actor=request.user, api_key=form.cleaned_data.get("api_key")
        )

    @admin.display(description=_("circuit"))
    def circuit(self, obj):
        state = circuit_states([obj.id])[obj.id]
        if state.state == "open":
            return _("open: skipped")
        if state.state == "half_open":
            return _("half-open: probing")
        return _("closed (%d failures)") % state.failures if state.failures else _("closed")

    @admin.display(description=_("key"))
    def masked_key(self, obj):
        return obj.api_key_masked

    @admin.display(description=_("owner"))
    def owner(self, obj):
        return obj.workspace or obj.user or "—"

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset):
        for credential in queryset:
            report = credential_test(credential_id=credential.id)
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, f"{credential.name}: {report.message}", level)

    @admin.action(description=_("Refresh model catalog"))
    def refresh_catalog(self, request, queryset):
        for credential in queryset:
            report = catalog_refresh(credential.id)
            level = messages.SUCCESS if report.ok else messages.ERROR
            self.message_user(request, f"{credential.name}: {report.message}", level)

    @admin.action(description=_("Reset circuit breaker"))
    def reset_circuit(self, request, queryset):
        names = []
        for credential in queryset:
            circuit_reset(credential.id)
            names.append(credential.name)
        self.message_user(
            request,
            ngettext(
                "Circuit breaker reset: %(names)s takes requests again.",
                "Circuit breakers reset: %(names)s take requests again.",
                len(names),
            )
            % {"names": ", ".join(names)},
            messages.SUCCESS,
        )


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = [
        "model_id",
        "display_name",
        "credential",
        "enabled",
        "listed",
        "context_window",
        "input_price_per_mtok",
        "output_price_per_mtok",
    ]
    list_editable = ["display_name", "enabled"]
    list_filter = ["enabled", "listed", "credential__kind", "credential"]
    search_fields = ["model_id", "display_name", "credential__name"]
    readonly_fields = ["credential", "model_id", "listed"]
    actions = ["enable", "disable"]

    def has_add_permission(self, request):
        return False  # rows come from the provider's model list

    @admin.action(description=_("Enable selected models"))
    def enable(self, request, queryset):
        queryset.update(enabled=True)

    @admin.action(description=_("Disable selected models"))
    def disable(self, request, queryset):
        queryset.update(enabled=False)


class AliasTargetInline(admin.TabularInline):
    model = AliasTarget
    extra = 1
    fields = ["position", "credential", "model_id"]
    ordering = ["position"]


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "description", "enabled", "target_list"]
    list_filter = ["enabled", "workspace"]
    search_fields = ["name", "description"]
    inlines = [AliasTargetInline]

    @admin.display(description=_("fallback order"))
    def target_list(self, obj):
        return " → ".join(f"{t.credential.name}:{t.model_id}" for t in obj.targets.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("targets__credential")
