"""factory_boy factories for control-plane models."""
from __future__ import annotations

import datetime as dt
import uuid

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from appliance.content.models import CachedContent, ContentState
from appliance.nodes.models import ProxyNode
from appliance.origins.credentials import encrypt_password
from appliance.origins.models import Origin
from appliance.playback.models import LiveSplit, PlayLog, StreamSession
from appliance.uplink.models import UplinkEvent

BASE_TIME = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        # get_or_create: transactional tests flush the groups the data migration made.
        for name in extracted or ():
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class ProxyNodeFactory(factory.django.DjangoModelFactory):
    """`node.token` holds the clear-text token for the test (only its hash is stored)."""

    class Meta:
        model = ProxyNode
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"node-{n}")
    token_hash = ""

    @factory.post_generation
    def token(self, create, extracted, **kwargs):
        self.token = extracted or ProxyNode.new_token()
        self.set_token(self.token)
        if create:
            self.save(update_fields=["token_hash"])


class OriginFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Origin

    name = factory.Sequence(lambda n: f"origin-{n}")
    base_url = factory.Sequence(lambda n: f"rtsp://127.0.0.1:{8600 + n}/")
    route_prefix = factory.Sequence(lambda n: f"/vod{n}")
    password_encrypted = factory.LazyAttribute(lambda o: encrypt_password(o.password))

    class Params:
        password = ""  # stored only encrypted, as the service does


class CachedContentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CachedContent

    node = factory.SubFactory(ProxyNodeFactory)
    url = factory.Sequence(lambda n: f"rtsp://127.0.0.1:8600/clip{n}")
    state = ContentState.COMPLETE
    size_bytes = 1000


class StreamSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StreamSession

    node = factory.SubFactory(ProxyNodeFactory)
    session_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    url = "rtsp://proxy.example/vod/clip"
    origin_url = "rtsp://127.0.0.1:8600/clip"
    player_addr = "127.0.0.1:40000"
    player_ip = "127.0.0.1"
    started_at = BASE_TIME


class LiveSplitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LiveSplit

    node = factory.SubFactory(ProxyNodeFactory)
    split_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    url = factory.Sequence(lambda n: f"rtsp://127.0.0.1:8600/live{n}")
    player_url = factory.LazyAttribute(lambda o: o.url.replace("127.0.0.1:8600/", "proxy.example/tv/"))
    state = "live"
    players = 3
    peak_players = 5
    origin_transport = "udp"
    started_at = BASE_TIME


class PlayLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlayLog

    node = factory.SubFactory(ProxyNodeFactory)
    received_at = BASE_TIME
    logged_at = BASE_TIME
    kind = "logplay"
    log_type = "legacy"
    url = "rtsp://proxy.example/vod/clip"
    c_playerid = factory.Sequence(lambda n: f"{{3300AD50-2C39-46c0-AE0A-{n:012X}}}")
    c_ip = "192.0.2.10"
    x_duration = 60
    avgbandwidth = 500_000
    c_pkts_received = 100
    c_pkts_lost_client = 0
    c_buffercount = 1
    c_totalbuffertime = 2


class UplinkEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UplinkEvent

    url = "rtsp://127.0.0.1:8600/clip"
    event_type = "remote-log"
    body = "<XML></XML>"
