"""Live splitting (MS-RTSP 4.6.2): one origin session per live URL feeds every player watching it.

detect.py decides (pure), hub.py owns the shared origin session, stream.py maps and fans out one
media stream, fanout.py is the UDP/TCP hot path, gop.py keeps the key-frame start for late joiners,
player.py is one player's session, strategy.py is its ServingStrategy (proxyd.serving.contracts).
"""
