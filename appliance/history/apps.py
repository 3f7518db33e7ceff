from django.apps import AppConfig


class HistoryConfig(AppConfig):
    name = "appliance.history"
    label = "history"
