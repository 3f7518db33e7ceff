from django.apps import AppConfig


class UplinkConfig(AppConfig):
    name = "appliance.uplink"
    label = "uplink"
