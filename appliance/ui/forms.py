"""Forms validate input only; the views hand cleaned data to the services."""

from django import forms

from appliance.nodes.models import ProxyNode
from appliance.origins.models import Origin
from appliance.origins.player_credentials import PlayerAccount
from appliance.origins.urls import clean_origin_url

ORIGIN_FIELDS = ["name", "base_url", "route_prefix", "allowed", "username", "password", "cache_policy",
                 "cache_ttl", "stale_if_error", "transport", "live", "split", "tls_verify", "player_access",
                 "player_realm", "player_credentials"]


class OriginForm(forms.ModelForm):
    password = forms.CharField(required=False, max_length=255, widget=forms.PasswordInput(render_value=False),
                               help_text="Leave empty to keep the stored password.")
    nodes = forms.ModelMultipleChoiceField(
        queryset=ProxyNode.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The nodes that serve this origin; none ticked: every node.")
    player_credentials = forms.CharField(
        required=False, label="Players", strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
        help_text="With Basic or Digest access: one username:password per line, replacing the stored "
                  "players (kept only as hashes). Leave empty to keep them.")

    class Meta:
        model = Origin
        fields = ORIGIN_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["nodes"] = list(self.instance.nodes.all())
        for name in ("player_access", "player_realm"):  # a post without them keeps what is stored
            self.fields[name].required = False

    def clean_player_access(self):
        return self.cleaned_data["player_access"] or self.instance.player_access

    def clean_player_realm(self):
        return self.cleaned_data["player_realm"].strip() or self.instance.player_realm

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

    def clean_player_credentials(self) -> list[PlayerAccount] | None:
        """Lines into accounts (the rules are the service's, shared with the API); None: keep."""
        lines = [line for line in self.cleaned_data["player_credentials"].splitlines() if line.strip()]
        if not lines:
            return None
        if any(":" not in line for line in lines):
            raise forms.ValidationError("One username:password per line.")
        return [PlayerAccount(*line.strip().split(":", 1)) for line in lines]

    def validate_unique(self):
        pass  # the service reports duplicates (it owns the transaction that would hit the constraint)


class PrestuffForm(forms.Form):
    url = forms.CharField(max_length=2000, label="Origin URL to fill")
