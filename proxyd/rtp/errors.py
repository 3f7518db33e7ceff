"""Errors of the RTP/RTCP/SDP modules."""


class PacketError(ValueError):
    """A malformed RTP/RTCP packet; the message says exactly what is wrong."""


class SdpError(ValueError):
    """An SDP body that cannot be parsed."""
