from django.db.models import QuerySet

from appliance.content.models import CachedContent, PrestuffRequest, PurgeRequest


def content_list() -> QuerySet[CachedContent]:
    return CachedContent.objects.select_related("node", "origin")


def purge_request_list() -> QuerySet[PurgeRequest]:
    return PurgeRequest.objects.all()


def prestuff_request_list() -> QuerySet[PrestuffRequest]:
    return PrestuffRequest.objects.select_related("node")
