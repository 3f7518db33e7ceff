"""Revalidation comparison (Figure 20 "expiration extended?"; brief 3.5 steps 7-9)."""

from proxyd.wm.validators import Validators, comparable, content_changed, validators_from_headers

SDP_A = (
    "v=0\r\no=- 1188340656180883 1 IN IP4 127.0.0.1\r\ns=Session streamed with GStreamer\r\n"
    "t=0 0\r\na=control:*\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:stream=0\r\n"
    "a=ssrc:1234 cname:user@host\r\n"
)


def test_validators_from_headers():
    v = validators_from_headers([
        ("etag", '"23180160"'),
        ("Last-Modified", "Tue, 10 Sep 2002 23:09:36 GMT"),
        ("Cache-Control", "x-wms-content-size=23180160, max-age=86399"),
        ("ETag", '"ignored-second"'),
    ])
    assert v == Validators("Tue, 10 Sep 2002 23:09:36 GMT", '"23180160"', 23180160)


def test_equal_validators_mean_unchanged():
    v = Validators("Tue, 10 Sep 2002 23:09:36 GMT", '"1"', 10)
    assert not content_changed(v, v, SDP_A, SDP_A)


def test_each_validator_can_signal_a_change():
    base = Validators("Tue, 10 Sep 2002 23:09:36 GMT", '"1"', 10)
    assert content_changed(base, Validators(base.last_modified, '"2"', 10))
    assert content_changed(base, Validators("Wed, 11 Sep 2002 23:09:36 GMT", '"1"', 10))
    assert content_changed(base, Validators(base.last_modified, '"1"', 11))


def test_dates_compare_as_instants_and_weak_etags_by_value():
    stored = Validators("Tue, 10 Sep 2002 23:09:36 GMT", 'W/"abc"', None)
    new = Validators("Tue, 10 Sep 2002 23:09:36 +0000", '"abc"', None)
    assert not content_changed(stored, new)


def test_missing_validator_on_one_side_is_not_a_change():
    stored = Validators("Tue, 10 Sep 2002 23:09:36 GMT", '"1"', 10)
    gci = Validators(None, None, 10)  # a GetContentInfo response may carry only Cache-Control
    assert not content_changed(stored, gci)
    assert comparable(stored, gci)
    assert not comparable(stored, Validators())


def test_sdp_ignores_per_response_lines():
    regenerated = SDP_A.replace("1188340656180883 1", "77 2").replace("a=ssrc:1234", "a=ssrc:999").replace("\r\n", "\n")
    assert not content_changed(Validators(), Validators(), SDP_A, regenerated.encode())
    changed = SDP_A.replace("H264/90000", "H265/90000")
    assert content_changed(Validators(), Validators(), SDP_A, changed)
