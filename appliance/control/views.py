"""/internal/v1/: used only by proxyd nodes."""
from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.views.decorators.csrf import csrf_exempt
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


def own_thread(view: type[InternalView]):
    """The view for urls.py. Under ASGI Django runs every sync view of a worker process in one thread,
    one request at a time, and a node's request mostly waits for PostgreSQL (a report batch for its
    commit's WAL flush). Here each request runs in a thread of the event loop's pool, so a worker has
    several in flight and their commits share flushes. Elsewhere (WSGI, the test client: one thread per
    request already, and the test's transaction must be seen) it runs in the request's thread."""
    sync_view = view.as_view()

    def run_and_release(request):
        try:
            return sync_view(request)
        finally:
            close_old_connections()  # the thread's connection back to the pool (request_finished does not see it)

    async def dispatch(request):
        if isinstance(request, ASGIRequest):
            return await sync_to_async(run_and_release, thread_sensitive=False)(request)
        return await sync_to_async(sync_view)(request)

    return csrf_exempt(dispatch)
