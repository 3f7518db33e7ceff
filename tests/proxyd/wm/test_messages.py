"""GetContentInfo and EndOfStream builders/parsers against the spec examples (2.2.7.3, 2.2.7.4, 3.2.5.3)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxyd.wm.messages import (
    end_of_stream_request,
    format_rtp_info,
    get_content_info_request,
    get_content_info_response,
    parse_end_of_stream_body,
)
from tests.proxyd.wm._fixtures import fixture_bytes, split_message


def test_gci_request_matches_spec_example():
    _, spec_headers, spec_body = split_message(fixture_bytes("rtsp_2_2_7_4_getcontentinfo.rtsp"))
    spec = {n.lower(): v for n, v in spec_headers}
    headers, body = get_content_info_request([("User-Agent", spec["user-agent"])])
    ours = {n.lower(): v for n, v in headers}
    assert body == spec_body == b"\x00"
    for name in ("content-type", "user-agent", "x-accept-authentication"):
        assert ours[name] == spec[name]
    assert "session" not in ours  # GCI needs no session (2.2.7.4)


def test_gci_response():  # 3.2.5.2, 3.2.5.3
    assert get_content_info_response(None) == ([("Cache-Control", "no-cache")], b"")
    assert get_content_info_response("public, max-age=5") == ([("Cache-Control", "public, max-age=5")], b"")


def test_end_of_stream_matches_spec_example():
    start, spec_headers, spec_body = split_message(fixture_bytes("rtsp_2_2_7_3_endofstream.rtsp"))
    headers, body = end_of_stream_request(
        session_id="13856065358275910855",
        streams=[("rtsp://myserver.com/ServerSidePlaylist.wsx/audio", 26968),
                 ("rtsp://myserver.com/ServerSidePlaylist.wsx/video", 46497)],
        playlist_gen_id=5351,
        reason="end-of-playlist-entry",
    )
    assert body == spec_body and len(body) == int(dict(spec_headers)["Content-Length"])
    ours, spec = dict(headers), dict(spec_headers)
    for name in ("Content-Type", "X-Notice", "X-Playlist-Gen-Id"):
        assert ours[name] == spec[name]
    # The spec example writes "Seq="; we send RFC 2326's lower-case "seq=" (brief errata).
    assert ours["RTP-Info"] == spec["RTP-Info"].replace("Seq=", "seq=")
    assert ours["Session"] == "13856065358275910855"


def test_end_of_stream_minimal():
    headers, body = end_of_stream_request(session_id="42", streams=[])
    assert body == b"Session: 42\r\nEOF: true\r\n"
    assert "RTP-Info" not in dict(headers) and "X-Playlist-Gen-Id" not in dict(headers)


def test_builders_reject_header_breaking_input():
    with pytest.raises(ValueError):
        end_of_stream_request(session_id="1\r\nX: y", streams=[])
    with pytest.raises(ValueError):
        format_rtp_info([('rtsp://h/a"b', 1)])


def test_rtp_info_quotes_urls_with_separators_and_wraps_seq():
    assert format_rtp_info([("rtsp://h/a;b", 65537)]) == 'url="rtsp://h/a;b";seq=1'


def test_parse_end_of_stream_body_leniently():
    eos = parse_end_of_stream_body(b"session: 7\nEOF: True\nEnd-Of-Playlist-Entry: TRUE\n")
    assert (eos.session_id, eos.eof, eos.end_of_playlist_entry, eos.receding) == ("7", True, True, False)
    spec = split_message(fixture_bytes("rtsp_2_2_7_3_endofstream.rtsp"))[2]
    assert parse_end_of_stream_body(spec).session_id == "13856065358275910855"


@given(st.binary(max_size=300))
def test_parse_end_of_stream_never_raises(body):
    parse_end_of_stream_body(body)
