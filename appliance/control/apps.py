from django.apps import AppConfig


class ControlConfig(AppConfig):
    name = "appliance.control"
    label = "control"
