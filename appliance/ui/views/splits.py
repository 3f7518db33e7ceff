from appliance.playback.filters import LiveSplitFilterSet
from appliance.playback.selectors import split_list
from appliance.ui.mixins import FilteredListView


class SplitListView(FilteredListView):
    template_name = "ui/split_list.html"
    filterset_class = LiveSplitFilterSet

    def base_queryset(self):
        return split_list().order_by("-started_at", "-pk")
