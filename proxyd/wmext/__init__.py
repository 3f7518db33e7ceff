"""Runtime integration of the pure Windows Media modules (proxyd.wm) into the relay.

- parameters.py  GET/SET_PARAMETER dispatch by kind: LogPlay/LogConnect/SendEvent answered at once,
                 GetContentInfo from a registered content-info source (cache) or forwarded upstream
- logs.py        LogPlay/LogConnect -> `playlog` reports; legacy logs -> rendering remote-log
- events.py      SendEvent -> `sendevent` reports (proxy rewrites applied); proxyd's own
                 remote-open / remote-close / remote-log for content served from cache or split
- negotiate.py   Supported on responses to players (server role)
- playlist.py    X-Playlist-Gen-Id check (412), EndOfStream/Announce relayed to players,
                 EndOfStream built by proxyd when it plays a playlist entry from cache
- upstream_log.py proxyd's own LogPlay after it paused a PLAYING relay session at a WM origin
The per-server state is proxyd.wm.state.WmState (ServerContext.wm); the identity headers on every
upstream request are proxyd.origin.wm_identity; SelectStream deselect is the relay session's.
"""
