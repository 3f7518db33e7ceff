"""Cache-Control parsing, serialization and the cacheability decision ([MS-RTSP] 2.2.6.2, 3.1.5.2).

Checklist numbers refer to docs ms-rtsp-behavior.md section 12.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyd.wm.cache_control import (
    CacheControl,
    decide_cacheability,
    format_cache_control,
    is_broadcast,
    parse_cache_control,
    reemit_for_hit,
)
from tests.proxyd.wm._fixtures import fixture_bytes


def spec_examples() -> list[str]:
    lines = fixture_bytes("cache_control_examples.txt").decode().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def decide(value, **overrides):
    kwargs = dict(policy="obey", forced_ttl=0, auth_challenged=False, live=False)
    kwargs.update(overrides)
    cc = parse_cache_control(value) if isinstance(value, str) else value
    return decide_cacheability(cc, **kwargs)


class TestParse:
    def test_rtsp_2_2_6_2_example(self):
        cc = parse_cache_control(spec_examples()[0])
        assert cc.no_cache and cc.content_size == 638066
        assert cc.event_subscription == ("remote-log",)
        assert not cc.public and cc.max_age is None and cc.errors == ()

    def test_wms_describe_header(self):
        cc = parse_cache_control(spec_examples()[3])
        assert (cc.content_size, cc.max_age) == (23180160, 86399)
        assert cc.must_revalidate and cc.proxy_revalidate and not cc.no_cache

    def test_wmsp_tokens_are_unknown_in_rtsp(self):
        # proxy-public / user-public exist only in MS-WMSP; MS-RTSP 2.2.6 says unknown tokens are ignored.
        cc = parse_cache_control(spec_examples()[4])
        assert cc.unknown == ("user-public", "proxy-public")
        assert not cc.public

    def test_quoted_list_keeps_commas_inside_quotes(self):
        cc = parse_cache_control(spec_examples()[5])
        assert cc.event_subscription == ("remote-log", "remote-open", "remote-close")
        assert cc.public and cc.proxy_revalidate and cc.max_age == 86399

    def test_every_directive(self):
        cc = parse_cache_control(
            'MAX-AGE=10, must-revalidate, no-cache, no-store, no-user-cache, private, proxy-revalidate,'
            ' public, x-wms-content-size=5, x-wms-event-subscription="remote-open",'
            ' x-wms-proxy-split, x-wms-stream-type="broadcast,playlist", x-vendor=1'
        )
        assert cc == CacheControl(
            max_age=10, must_revalidate=True, no_cache=True, no_store=True, no_user_cache=True,
            private=True, proxy_revalidate=True, public=True, content_size=5,
            event_subscription=("remote-open",), proxy_split=True,
            stream_types=("broadcast", "playlist"), unknown=("x-vendor=1",),
        )

    @pytest.mark.parametrize("value", ["max-age=abc", "max-age=-5", "max-age", "max-age=1e3"])
    def test_bad_max_age_is_reported_and_ignored(self, value):
        cc = parse_cache_control(value)
        assert cc.max_age is None and len(cc.errors) == 1

    def test_first_max_age_wins(self):
        cc = parse_cache_control("max-age=5, max-age=7")
        assert cc.max_age == 5 and "duplicate" in cc.errors[0]

    def test_huge_delta_seconds_is_capped(self):
        assert parse_cache_control("max-age=99999999999999999999").max_age == 2**31

    def test_unterminated_quote_runs_to_end(self):
        cc = parse_cache_control('x-wms-event-subscription="remote-log, public')
        assert cc.event_subscription == ("remote-log", "public") and not cc.public

    def test_directive_limit(self):
        cc = parse_cache_control(", ".join(["public"] * 40), max_directives=12)
        assert cc.public and cc.errors

    def test_empty(self):
        assert parse_cache_control(None) == CacheControl() == parse_cache_control("")

    def test_is_broadcast(self):
        assert is_broadcast(parse_cache_control('x-wms-stream-type="broadcast"'))
        assert not is_broadcast(parse_cache_control('x-wms-stream-type="playlist"'))
        assert not is_broadcast(None)


class TestFormat:
    def test_strict_canonical_form(self):
        cc = parse_cache_control(
            'Public, X-WMS-Event-Subscription="remote-log,bogus", max-age=86399, user-public,'
            ' x-wms-content-size=638066, proxy-revalidate'
        )
        assert format_cache_control(cc) == (
            'x-wms-content-size=638066, max-age=86399, proxy-revalidate, public,'
            ' x-wms-event-subscription="remote-log"'
        )

    def test_at_most_twelve_directives(self):
        everything = parse_cache_control(
            'max-age=1, must-revalidate, no-cache, no-store, no-user-cache, private, proxy-revalidate,'
            ' public, x-wms-content-size=5, x-wms-event-subscription="remote-log",'
            ' x-wms-proxy-split, x-wms-stream-type="broadcast"'
        )
        assert len(format_cache_control(everything).split(", ")) == 12

    @given(st.text(max_size=300))
    def test_parse_never_raises_and_format_round_trips(self, value):
        cc = parse_cache_control(value)
        again = parse_cache_control(format_cache_control(cc))
        assert format_cache_control(again) == format_cache_control(cc)


class TestReemitForHit:
    """Checklist 16: the stored header goes downstream with max-age lowered to the remaining lifetime."""

    def test_max_age_reduced_by_age(self):
        cc = parse_cache_control(spec_examples()[5])
        out = parse_cache_control(reemit_for_hit(cc, age_seconds=399.7))
        assert out.max_age == 86000
        assert out.event_subscription == cc.event_subscription and out.public and out.proxy_revalidate

    def test_never_negative(self):
        assert "max-age=0" in reemit_for_hit(parse_cache_control("public, max-age=10"), age_seconds=50)

    def test_no_user_cache_passes_through(self):  # checklist 28
        out = reemit_for_hit(parse_cache_control("public, no-user-cache, max-age=60"), age_seconds=1)
        assert "no-user-cache" in out and "max-age=59" in out


class TestDecision:
    def test_public_with_max_age(self):
        d = decide("public, max-age=86399")
        assert (d.cacheable, d.ttl_seconds, d.revalidate_before_serving, d.reason) == (True, 86399, False, "public")

    def test_wms_headers_cacheable_with_revalidation(self):  # 2.2.6.2.7
        d = decide(spec_examples()[3])
        assert d.cacheable and d.ttl_seconds == 86399 and d.revalidate_before_serving

    def test_no_cache_forbids_even_with_public(self):  # checklist 25, 2.2.6.2.3
        d = decide(spec_examples()[0] + ", public")
        assert not d.cacheable and d.reason == "no-cache"

    def test_private_forbids_caching_and_splitting(self):  # checklist 26, 2.2.6.2.6
        d = decide("public, private, max-age=60, x-wms-proxy-split", split_policy="always")
        assert not d.cacheable and not d.splittable and d.reason == "private"

    def test_no_store_is_not_cached_on_disk(self):  # checklist 27, 2.2.6.2.4
        d = decide("public, no-store, max-age=60")
        assert not d.cacheable and d.reason == "no-store"

    def test_no_user_cache_does_not_bind_a_proxy(self):  # checklist 28, 2.2.6.2.5
        assert decide("no-user-cache, public, max-age=60").cacheable

    def test_must_revalidate_alone_permits_but_does_not_force_revalidation(self):  # checklist 29
        d = decide("must-revalidate, max-age=120")
        assert d.cacheable and d.ttl_seconds == 120 and not d.revalidate_before_serving
        assert d.reason == "must-revalidate"

    def test_proxy_revalidate_permits_and_forbids_stale(self):  # 2.2.6.2.7
        d = decide("proxy-revalidate, max-age=30")
        assert d.cacheable and d.revalidate_before_serving

    def test_caching_is_opt_in(self):  # 3.1.5.2
        d = decide("max-age=86399, x-wms-content-size=1")
        assert not d.cacheable and d.reason == "no-permission"

    def test_without_max_age_the_entry_is_stale_at_once(self):  # checklist 17
        d = decide("public")
        assert d.cacheable and d.ttl_seconds == 0

    def test_broadcast_is_never_cached_and_split_needs_proxy_split(self):  # checklist 31-33
        split = decide('public, max-age=60, x-wms-stream-type="broadcast", x-wms-proxy-split')
        assert (split.cacheable, split.splittable, split.reason) == (False, True, "broadcast")
        alone = decide('public, x-wms-stream-type="broadcast"')
        assert not alone.cacheable and not alone.splittable

    def test_operator_live_flag(self):
        d = decide("public, max-age=60", live=True, split_policy="always")
        assert (d.cacheable, d.splittable, d.reason) == (False, True, "live")

    def test_split_policy_never_overrides_proxy_split(self):
        d = decide('x-wms-stream-type="broadcast", x-wms-proxy-split', split_policy="never")
        assert not d.splittable

    def test_auth_challenge_forbids_caching_and_splitting(self):  # checklist 24
        d = decide("public, max-age=60, x-wms-proxy-split", auth_challenged=True, split_policy="always")
        assert (d.cacheable, d.splittable, d.reason) == (False, False, "auth-challenged")

    def test_missing_header(self):
        assert decide(None).reason == "no-cache-control" and not decide(None).cacheable
        forced = decide(None, policy="force_ttl", forced_ttl=300)
        assert (forced.cacheable, forced.ttl_seconds, forced.reason) == (True, 300, "forced-ttl")

    def test_force_ttl_obeys_a_present_header(self):
        assert not decide("no-cache", policy="force_ttl", forced_ttl=300).cacheable
        assert decide("public, max-age=5", policy="force_ttl", forced_ttl=300).ttl_seconds == 5

    def test_policy_never(self):
        d = decide("public, max-age=60", policy="never")
        assert not d.cacheable and d.reason == "policy-never"

    @given(st.text(max_size=200), st.sampled_from(["obey", "force_ttl", "never"]), st.booleans(), st.booleans())
    def test_invariants(self, value, policy, auth, live):
        d = decide(value, policy=policy, forced_ttl=10, auth_challenged=auth, live=live)
        cc = parse_cache_control(value)
        if d.cacheable:
            assert not (auth or live or cc.no_cache or cc.private or cc.no_store or cc.is_broadcast)
            assert d.ttl_seconds is not None and d.ttl_seconds >= 0
        else:
            assert d.ttl_seconds is None
        if cc.private or auth:
            assert not d.splittable
