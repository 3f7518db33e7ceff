"""TLS contexts for RTSPS: the player listener's (certificate re-readable in place on SIGHUP) and the
client contexts toward rtsps:// origins (verifying against a CA bundle, or not at all).

TLS 1.2 is the floor on both sides; ciphers are OpenSSL's defaults for that floor (forward-secret
AEAD suites first, no RC4/3DES/export), compression and renegotiation off."""

from __future__ import annotations

import ssl

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TlsConfigError(ValueError):
    """A certificate, key or CA file cannot be loaded; the message names the file and the reason."""


def _harden(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = MINIMUM_VERSION
    context.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    return context


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    load_certificate(context, cert_file, key_file)
    return context


def load_certificate(context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    """(Re)load the listener's certificate and key: handshakes after this use them, connections
    already up keep theirs. A bad file raises TlsConfigError and leaves the context as it was."""
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise TlsConfigError(f"cannot read {exc.filename or cert_file}: {exc.strerror}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"cannot load certificate {cert_file} with key {key_file}: "
                             f"{getattr(exc, 'reason', None) or exc}") from None


def origin_context(ca_file: str = "", verify: bool = True) -> ssl.SSLContext:
    """Client context for rtsps:// origins: the certificate must chain to `ca_file` (or the system
    store) and name the origin host; verify=False accepts any certificate (still encrypted)."""
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    except FileNotFoundError as exc:
        raise TlsConfigError(f"cannot read {exc.filename or ca_file}: {exc.strerror}") from None
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise TlsConfigError(f"cannot load CA bundle {ca_file}: {reason}") from None
    return context


class OriginTls:
    """The two client contexts toward rtsps:// origins, built on first use (loading the system trust
    store takes ~0.1 s, so a node without rtsps origins never pays it)."""

    def __init__(self, ca_file: str = "", verify: bool = True) -> None:
        self.ca_file = ca_file
        self.verify = verify  # the node's default; a route may only turn checking off
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def context(self, verify: bool = True) -> ssl.SSLContext:
        verify = verify and self.verify
        context = self._contexts.get(verify)
        if context is None:
            context = self._contexts[verify] = origin_context(self.ca_file, verify)
        return context
