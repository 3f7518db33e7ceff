"""Websocket URL patterns."""

from django.urls import path

from appliance.playback.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
