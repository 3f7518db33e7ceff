from django.apps import AppConfig


class UiConfig(AppConfig):
    name = "appliance.ui"
    label = "ui"
    verbose_name = "Dashboard"
