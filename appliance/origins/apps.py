from django.apps import AppConfig


class OriginsConfig(AppConfig):
    name = "appliance.origins"
    label = "origins"
