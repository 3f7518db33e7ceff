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

from appliance.control.auth import IsProxyNode, ProxydTokenAuthentication
from appliance.control.schemas import ReportBatchSerializer, ReportResultSerializer
from appliance.control.services import node_mark_seen, report_batch_ingest
from appliance.control.snapshot import snapshot_build
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
    def get(self, request):
        now = timezone.now()
        node_mark_seen(node=request.auth, now=now)
        try:
            snapshot = snapshot_build(node=request.auth, now=now)
        except CredentialsKeyError as exc:
            logger.error("snapshot for node %s not built: %s", request.auth.name, exc)
            raise SnapshotUnavailable() from None
        etag = snapshot["etag"]
        headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
        if etag in _etags(request.headers.get("If-None-Match", "")):
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
