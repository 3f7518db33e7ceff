from django.db.models import QuerySet

from appliance.uplink.models import UplinkEvent


def uplink_event_list() -> QuerySet[UplinkEvent]:
    return UplinkEvent.objects.select_related("origin", "node", "session")
