"""Windows Media RTSP extensions ([MS-RTSP], [MS-WMLOG], [MS-WMSP] remote events) as pure functions.

Nothing in this package reads sockets, files or clocks; callers pass the current time in.
Parsers are lenient (they never raise on peer input and report what they could not read);
builders and serializers are strict (they only emit what the grammars allow).
"""
