from django.db.models import QuerySet

from appliance.playback.models import LiveSplit, PlayLog, SplitState, StreamSession


def session_list() -> QuerySet[StreamSession]:
    return StreamSession.objects.select_related("node", "origin")


def live_sessions() -> QuerySet[StreamSession]:
    return session_list().filter(ended_at__isnull=True, started_at__isnull=False)


def playlog_list() -> QuerySet[PlayLog]:
    return PlayLog.objects.select_related("node", "origin", "session")


def split_list() -> QuerySet[LiveSplit]:
    return LiveSplit.objects.select_related("node", "origin")


def live_splits() -> QuerySet[LiveSplit]:
    """Splits whose hub has not reported `ended` (starting, live or reconnecting)."""
    return split_list().exclude(state=SplitState.ENDED)
