from django.apps import AppConfig


class PlaybackConfig(AppConfig):
    name = "appliance.playback"
    label = "playback"
