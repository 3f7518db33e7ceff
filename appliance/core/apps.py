from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "appliance.core"
    label = "core"

    def ready(self) -> None:
        from appliance.core import checks  # noqa: F401  (registers the system checks)
