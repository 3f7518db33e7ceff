"""/internal/v1/: used only by proxyd nodes."""
from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from appliance.control.auth import IsProxyNode, ProxydPollAuthentication, ProxydTokenAuthentication
from appliance.control.poll import snapshot_for_poll
from appliance.control.schemas import ReportBatchSerializer, ReportResultSerializer
from appliance.control.services import report_batch_ingest
from appliance.origins.credentials import CredentialsKeyError

logger = logging.getLogger(__name__)


class SnapshotUnavailable(exceptions.APIException):
    # proxyd keeps its last-known-good snapshot on a 5xx and asks again later.
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The snapshot cannot be built now."
    default_code = "snapshot_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Report body too large."
    default_code = "too_large"


class InternalView(APIView):
    authentication_classes = [ProxydTokenAuthentication]
    permission_classes = [IsProxyNode]
    throttle_classes = []  # nodes are authenticated machines whose report rate proxyd bounds itself
    renderer_classes = [JSONRenderer]
    parser_classes = [JSONParser]


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/").strip('"') for tag in header.split(",") if tag.strip()}


@extend_schema(exclude=True)
class SnapshotView(InternalView):
    authentication_classes = [ProxydPollAuthentication]  # also marks the node seen (one statement)

    def get(self, request):
        poll = request.user.poll
        known = _etags(request.headers.get("If-None-Match", ""))
        etag = poll.unchanged_etag()
        snapshot = None
        if etag is None or etag not in known:  # build it; a 304 below only when it is still the node's
            try:
                snapshot = snapshot_for_poll(poll)
            except CredentialsKeyError as exc:
                logger.error("snapshot for node %s not built: %s", request.auth.name, exc)
                raise SnapshotUnavailable() from None
            etag = snapshot["etag"]
        headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
        if etag in known:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(snapshot, headers=headers)


@extend_schema(exclude=True)
class ReportsView(InternalView):
    def post(self, request):
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.APPLIANCE_MAX_REPORT_BYTES:
            raise PayloadTooLarge()
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        events = body.get("events")
        if isinstance(events, list) and len(events) > settings.APPLIANCE_MAX_REPORT_EVENTS:
            raise exceptions.ValidationError(
                {"events": [f"At most {settings.APPLIANCE_MAX_REPORT_EVENTS} events per batch."]})
        batch = ReportBatchSerializer(data=body)
        batch.is_valid(raise_exception=True)
        result = report_batch_ingest(node=request.auth, node_info=batch.validated_data.get("node", {}),
                                     events=batch.validated_data["events"], now=timezone.now())
        return Response(ReportResultSerializer(result).data)

