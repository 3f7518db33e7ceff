from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "appliance.ops"
    label = "ops"
