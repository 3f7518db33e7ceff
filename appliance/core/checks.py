"""System checks with stable ids for configuration mistakes that would otherwise show up at runtime."""
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_deploy_settings(app_configs, **kwargs):
    problems = []
    if settings.DEBUG:
        problems.append(Warning("APPLIANCE_DEBUG is on.", hint="Unset it in production.", id="appliance.W001"))
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and not settings.EMBEDDED:
        problems.append(Warning("SQLite is for the quick start only.",
                                hint="Set DATABASE_URL=postgres://... (or APPLIANCE_EMBEDDED=1).",
                                id="appliance.W002"))
    return problems


@register()
def check_limits(app_configs, **kwargs):
    if settings.APPLIANCE_MAX_REPORT_BYTES > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return [Error("APPLIANCE_MAX_REPORT_BYTES exceeds DATA_UPLOAD_MAX_MEMORY_SIZE.", id="appliance.E001")]
    return []
