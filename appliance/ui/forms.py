"""Forms validate input only; the views hand cleaned data to the services."""

from django import forms

from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from appliance.origins.urls import clean_origin_url

ORIGIN_FIELDS = ["name", "base_url", "route_prefix", "allowed", "username", "password", "cache_policy",
                 "cache_ttl", "stale_if_error", "transport", "live", "split", "tls_verify"]


class OriginForm(forms.ModelForm):
    password = forms.CharField(required=False, max_length=255, widget=forms.PasswordInput(render_value=False),
                               help_text="Leave empty to keep the stored password.")
    nodes = forms.ModelMultipleChoiceField(
        queryset=ProxyNode.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The nodes that serve this origin; none ticked: every node.")

    class Meta:
        model = Origin
        fields = ORIGIN_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["nodes"] = list(self.instance.nodes.all())

    def clean_base_url(self):
        try:
            return clean_origin_url(self.cleaned_data["base_url"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_route_prefix(self):
        prefix = self.cleaned_data["route_prefix"].strip()
        if not prefix.startswith("/"):
            raise forms.ValidationError("The route prefix starts with '/'.")
        return prefix

    def validate_unique(self):
        pass  # the service reports duplicates (it owns the transaction that would hit the constraint)


class PrestuffForm(forms.Form):
    url = forms.CharField(max_length=2000, label="Origin URL to fill")
