from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "appliance.content"
    label = "content"
