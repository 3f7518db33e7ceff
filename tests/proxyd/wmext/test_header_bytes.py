"""Header values that are not UTF-8 (tests/fuzz/regressions/rtsp_client-latin1-header-grows-when-resent):
proxyd reads them leniently (Latin-1) and forwards them byte for byte, both ways, between a player and
the WM test origin (whose wire layer keeps undecodable bytes as surrogate escapes)."""

from __future__ import annotations

from tests.proxyd.wmext.harness import proxy_url, rtsp_exchange, running_proxy

NOT_UTF8 = b"Caf\xe9 \xff\x80 \xc3".decode("utf-8", "surrogateescape")  # stands for those exact bytes


async def test_header_values_that_are_not_utf8_are_forwarded_byte_exact_both_ways(wm_origin):
    wm_origin.set_entry("/clip.wmv", seed="bytes")
    wm_origin.reply_headers = [("X-Title", NOT_UTF8)]
    async with running_proxy(wm_origin.url("")) as server:
        answer = await rtsp_exchange(proxy_url(server, "/clip.wmv"), "DESCRIBE",
                                     [("Accept", "application/sdp"), ("X-Note", NOT_UTF8)])
    assert answer.status == 200, answer
    assert answer.header("X-Title") == NOT_UTF8  # origin -> player
    describe = next(r for r in wm_origin.requests if r.method == "DESCRIBE")
    assert describe.header("X-Note") == NOT_UTF8  # player -> origin
