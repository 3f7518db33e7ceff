from django.db.models import Avg, Count, F, Q, QuerySet, Sum

from appliance.playback.models import LiveSplit, PlayLog, SplitState, StreamSession


def session_list() -> QuerySet[StreamSession]:
    return StreamSession.objects.select_related("node", "origin")


def live_sessions() -> QuerySet[StreamSession]:
    return session_list().filter(ended_at__isnull=True, started_at__isnull=False)


def playlog_list() -> QuerySet[PlayLog]:
    return PlayLog.objects.select_related("node", "origin", "session")


def playlog_rows() -> QuerySet[PlayLog]:
    """Play logs with their node, origin and session named in the row itself: an API page of 1,000 rows
    builds 1,000 model instances instead of 4,000 (select_related makes one per related row too)."""
    return PlayLog.objects.annotate(node_name=F("node__name"), origin_name=F("origin__name"),
                                    session_public_id=F("session__session_id"))


def split_list() -> QuerySet[LiveSplit]:
    return LiveSplit.objects.select_related("node", "origin")


def live_splits() -> QuerySet[LiveSplit]:
    """Splits whose hub has not reported `ended` (starting, live or reconnecting)."""
    return split_list().exclude(state=SplitState.ENDED)


def session_qos_list() -> QuerySet[StreamSession]:
    """Sessions with their players' LogPlay figures summed over the session's play logs (player_* names)."""
    logplay = Q(playlogs__kind="logplay")
    return session_list().annotate(
        player_logs=Count("playlogs", filter=logplay),
        player_received=Sum("playlogs__c_pkts_received", filter=logplay),
        player_lost=Sum("playlogs__c_pkts_lost_client", filter=logplay),
        player_buffer_count=Sum("playlogs__c_buffercount", filter=logplay),
        player_buffer_seconds=Sum("playlogs__c_totalbuffertime", filter=logplay),
        player_bandwidth=Avg("playlogs__avgbandwidth", filter=logplay),
        player_quality=Avg("playlogs__c_quality", filter=logplay),
    )
