"""Shared DRF pieces: pagination and the one error handler / JSON error shape.

Every error body is {"error": {"code": str, "message": str, "fields": {field: [messages]}}}.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from appliance.core.exceptions import ApplicationError
from appliance.core.pagination import CappedCountPaginator


class StandardPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000


class CappedCountPagination(StandardPagination):
    """StandardPagination with the count capped at APPLIANCE_PLAYLOG_COUNT_MAX or one page past the page
    asked for (huge tables): `count_capped` tells a client that `count` is a lower bound."""

    def django_paginator_class(self, object_list, per_page):
        return CappedCountPaginator(object_list, per_page, count_cap=settings.APPLIANCE_PLAYLOG_COUNT_MAX,
                                    deepest_row=settings.APPLIANCE_PLAYLOG_EXPORT_MAX_ROWS)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_capped"] = self.page.paginator.count_capped
        return response

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["count_capped"] = {
            "type": "boolean", "description": "true: more rows match than `count` (the count stops at a cap)"}
        return paginated


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail) -> dict:
    if isinstance(detail, dict):
        return {key: [str(item) for item in (value if isinstance(value, list) else [value])]
                for key, value in detail.items()}
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: let Django log it and answer 500
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", "Invalid input.", _flatten(exc.detail))
    else:
        codes = exc.get_codes()
        body = error_body(codes if isinstance(codes, str) else "error", str(exc.detail))
    return Response(body, status=getattr(exc, "status_code", status.HTTP_400_BAD_REQUEST), headers=headers)
