from django.apps import AppConfig
from django.contrib.staticfiles.apps import StaticFilesConfig as BaseStaticFilesConfig


class UiConfig(AppConfig):
    name = "appliance.ui"
    label = "ui"
    verbose_name = "Dashboard"


class StaticFilesConfig(BaseStaticFilesConfig):
    """collectstatic without the files of django-chartjs the dashboard does not use (Highcharts is not
    under a free licence; excanvas is for old Internet Explorer). Only its Chart.js is served."""

    ignore_patterns = [*BaseStaticFilesConfig.ignore_patterns, "highcharts", "excanvas.js"]
