"""The ASF builder, the x-asf-pf payload format ([MS-RTSP] 2.2.1), remote events ([MS-WMSP] 2.2.5)
and the SDP ([MS-RTSP] 2.2.5) of the test origin."""

from __future__ import annotations

import base64
import shutil
import struct
import subprocess

import pytest

from tests.wmorigin import asfpf, guids
from tests.wmorigin.asf import build_asf
from tests.wmorigin.events import build_remote_log, parse_remote_event
from tests.wmorigin.sdp import build_sdp, parse_sdp


def _stripped(asf, stream):
    return [(asfpf.strip_padding(p.data), p.send_time, p.key) for p in asf.packets_for(stream)]


def test_same_seed_and_version_give_identical_bytes_and_a_new_version_changes_them():
    first, again, changed = build_asf("clip"), build_asf("clip"), build_asf("clip", 2)
    assert first.data == again.data
    assert changed.file_id != first.file_id
    assert changed.header != first.header
    assert [p.data for p in changed.packets] != [p.data for p in first.packets]


def test_file_structure_follows_the_asf_object_layout():
    asf = build_asf("layout", duration_ms=2000, maxps=1000)
    assert asf.header[:16] == guids.HEADER.bytes_le
    header_size = struct.unpack_from("<Q", asf.header, 16)[0]
    assert asf.header[header_size:header_size + 16] == guids.DATA.bytes_le  # data object header follows
    assert len(asf.header) == header_size + 50
    assert all(len(p.data) == 1000 for p in asf.packets)
    assert len(asf.data) == asf.size
    send_times = [p.send_time for p in asf.packets]
    assert send_times == sorted(send_times)
    assert {p.stream for p in asf.packets} == {1, 2}
    assert any(p.key for p in asf.packets_for(2)) and not all(p.key for p in asf.packets_for(2))


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_ffprobe_reads_the_built_file_as_wma_and_wmv(tmp_path):
    """A real demuxer agrees the container is valid: streams, codecs and one packet per media object."""
    asf = build_asf("probe", duration_ms=2000, video_fps=10)
    path = tmp_path / "probe.asf"
    path.write_bytes(asf.data)
    out = subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                          "stream=codec_name,nb_read_packets", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert out == ["wmav2,20", "wmv2,20"]


def test_strip_and_restore_padding_round_trip_exactly():
    asf = build_asf("pad")
    for packet in asf.packets:
        info = asfpf.packet_info(packet.data)
        stripped = asfpf.strip_padding(packet.data)
        assert len(stripped) == len(packet.data) - info.padding_length
        assert asfpf.packet_info(stripped).padding_length == 0
        assert (info.send_time, info.stream, info.key) == (packet.send_time, packet.stream, packet.key)
        first_of_object = packet.index == 0 or asf.packets[packet.index - 1].send_time != packet.send_time \
            or asf.packets[packet.index - 1].stream != packet.stream
        assert (info.object_offset == 0) is first_of_object
        assert asfpf.restore_padding(stripped, asf.maxps) == packet.data


def test_truncated_packet_raises_a_clean_error():
    with pytest.raises(asfpf.AsfPacketError):
        asfpf.packet_info(b"\x82\x00")


@pytest.mark.parametrize("limit", [300, 700, 1200, 4000])
def test_payloads_reassemble_into_the_original_packets(limit):
    asf = build_asf("rtp")
    for stream in (1, 2):
        payloads = asfpf.payloads(_stripped(asf, stream), limit)
        assert all(len(p.data) <= limit for p in payloads)
        depacketizer = asfpf.Depacketizer()
        out = []
        for p in payloads:
            out += depacketizer.feed(p.data, p.timestamp, p.marker)
        assert [asfpf.restore_padding(d, asf.maxps) for _, d in out] == [p.data for p in asf.packets_for(stream)]
        assert [t for t, _ in out] == [p.send_time for p in asf.packets_for(stream)]
        assert depacketizer.broken == 0


def test_payload_header_fields_for_fragments_and_combined_packets():
    asf = build_asf("fields")
    video = _stripped(asf, 2)
    big = next(i for i, (data, _, key) in enumerate(video) if key and len(data) > 600)
    fragments = [p for p in asfpf.payloads([video[big]], 500)]
    assert len(fragments) >= 2
    offsets = []
    for frag in fragments:
        word = struct.unpack_from(">I", frag.data)[0]
        assert word >> 24 & 0x40 == 0  # L=0: offset, not length
        assert word >> 24 & 0x80  # S: key frame, same in every fragment
        offsets.append(word & 0xFFFFFF)
    assert offsets == [sum(len(f.data) - 4 for f in fragments[:i]) for i in range(len(fragments))]
    assert [f.marker for f in fragments] == [False] * (len(fragments) - 1) + [True]

    audio = _stripped(asf, 1)[:3]  # small packets with different send times: combined, R present
    (combined,) = asfpf.payloads(audio, 4000)
    assert combined.timestamp == audio[0][1] and combined.marker
    second = 4 + len(audio[0][0])
    flags, length = combined.data[second], int.from_bytes(combined.data[second + 1:second + 4], "big")
    assert flags & 0x40 and flags & 0x20 and length == len(audio[1][0])
    assert struct.unpack_from(">i", combined.data, second + 4)[0] == audio[1][1] - audio[0][1]


def test_a_lost_fragment_drops_that_packet_and_is_counted():
    asf = build_asf("loss")
    video = _stripped(asf, 2)
    payloads = asfpf.payloads(video[:4], 400)
    lost = next(i for i, p in enumerate(payloads) if not p.marker and i > 0
                and struct.unpack_from(">I", p.data)[0] & 0xFFFFFF)
    depacketizer = asfpf.Depacketizer()
    out = []
    for i, p in enumerate(payloads):
        if i != lost:
            out += depacketizer.feed(p.data, p.timestamp, p.marker)
    assert depacketizer.broken == 1
    assert len(out) == 3


def test_remote_log_event_round_trips_and_bad_bodies_are_reported_not_raised():
    body = build_remote_log(user_agent="WMPlayer/11.0.5721.5145 guid/AB", player_guid="AB",
                            url="rtsp://o/clip.wmv", rendering_log="<XML><Summary>a, b</Summary></XML>")
    event, error = parse_remote_event(body)
    assert error is None and event.name == "remote-log" and event.reason == 0
    assert event.value("@.REMOTE_LOG") == "<XML><Summary>a, b</Summary></XML>"
    assert event.value("WMS_USER_GUID") == "{AB}"
    assert parse_remote_event(b"1\r\n1,29,0\r\n")[0].name == "remote-close"
    for bad in (b"", b"1\r\n", b"1\r\n1,30,0\r\n", b"1\r\n1,31,0\r\n", b"1\r\n1,30,0\r\n99,x\r\n"):
        event, error = parse_remote_event(bad)
        assert event is None and error


def test_sdp_carries_the_windows_media_attributes():
    asf = build_asf("sdp")
    text = build_sdp(asf, "rtsp://h/clip.wmv", session_id=1, version=1)
    lines = text.split("\r\n")
    assert "b=RS:0" in lines and "b=RR:0" in lines and f"a=maxps:{asf.maxps}" in lines
    assert "a=control:rtsp://h/clip.wmv/" in lines
    assert lines.count("a=rtpmap:96 x-asf-pf/1000") == 2
    assert "a=stream:65536" in lines and "a=rtpmap:97 x-wms-rtx/1000" in lines
    parsed = parse_sdp(text)
    assert parsed.asf_header == asf.header
    assert [(s.kind, s.control, s.stream) for s in parsed.media_streams()] == [("audio", "audio", 1),
                                                                                ("video", "video", 2)]
    pgmpu = next(line for line in lines if line.startswith("a=pgmpu:"))
    assert base64.b64decode(pgmpu.split("base64,", 1)[1]) == asf.header
