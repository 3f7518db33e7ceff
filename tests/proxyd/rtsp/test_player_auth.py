"""proxyd.rtsp.player_auth: the server role of Basic/Digest, checked against the RFCs' worked examples.

RFC 7616 section 3.9.1 (Mufasa / "Circle of Life", MD5 and SHA-256 responses to GET /dir/index.html)
and RFC 7617 section 2 (Aladdin / "open sesame", realm WallyWorld) are answered with the RFCs' own
Authorization values; the server knows only H(A1).
"""

from __future__ import annotations

import hashlib

import pytest

from proxyd.rtsp.auth import ClientAuth, Credentials, digest_ha1, parse_challenges
from proxyd.rtsp.player_auth import (
    PlayerAuthenticator,
    PolicyError,
    make_policy,
    parse_htdigest,
)

REALM = "http-auth@example.org"
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_MD5_ANSWER = (f'Digest username="Mufasa", realm="{REALM}", uri="/dir/index.html", algorithm=MD5, '
                      f'nonce="{NONCE}", nc=00000001, cnonce="{CNONCE}", qop=auth, '
                      'response="8ca523f5e9506fed4657c9700eebdbec", '
                      'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
RFC7616_SHA256_ANSWER = (f'Digest username="Mufasa", realm="{REALM}", uri="/dir/index.html", '
                         f'algorithm=SHA-256, nonce="{NONCE}", nc=00000001, cnonce="{CNONCE}", qop=auth, '
                         'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
                         'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')


def mufasa_policy(mode: str = "digest"):
    hashes = {a: digest_ha1(a, "Mufasa", REALM, "Circle of Life") for a in ("MD5", "SHA-256")}
    return make_policy(mode, REALM, {"Mufasa": hashes})


def authenticator(**overrides) -> PlayerAuthenticator:
    settings = dict(max_failures=3, failure_window=60.0, nonce_lifetime=30.0, max_nonces=100,
                    max_addresses=100, nonce_source=lambda: NONCE)
    return PlayerAuthenticator(**{**settings, **overrides})


def check(auth, policy, value, *, uri="/dir/index.html", now=0.0, address="192.0.2.1", proxy=False,
          method="GET"):
    return auth.check(policy, method=method, uri=uri, authorization=value, address=address, now=now,
                      proxy=proxy)


def test_stored_hashes_are_rfc7616_ha1():
    assert digest_ha1("MD5", "Mufasa", REALM, "Circle of Life") == hashlib.md5(
        f"Mufasa:{REALM}:Circle of Life".encode()).hexdigest()


@pytest.mark.parametrize("answer", [RFC7616_MD5_ANSWER, RFC7616_SHA256_ANSWER], ids=["MD5", "SHA-256"])
def test_rfc7616_worked_examples_are_accepted_once(answer):
    auth, policy = authenticator(), mufasa_policy()
    challenge = check(auth, policy, None)
    assert (challenge.ok, challenge.status) == (False, 401)
    offered = parse_challenges([v for n, v in challenge.headers if n == "WWW-Authenticate"])
    assert [c.algorithm for c in offered] == ["SHA-256", "MD5"]  # preferred first (RFC 7616 3.7)
    assert all(c.get("nonce") == NONCE and c.qops == ("auth",) and c.realm == REALM for c in offered)

    accepted = check(auth, policy, answer, now=1.0)
    assert accepted.ok and accepted.username == "Mufasa"
    replayed = check(auth, policy, answer, now=2.0)
    assert (replayed.ok, replayed.status) == (False, 401) and "replayed" in replayed.detail


def test_the_proxy_client_answers_its_own_challenge_and_counts_nc_up():
    auth, policy = authenticator(nonce_source=iter(["n1", "n2"]).__next__), mufasa_policy()
    client = ClientAuth(Credentials("Mufasa", "Circle of Life"), cnonce=lambda: "c0ffee")
    attempt = client.attempt("DESCRIBE", "rtsp://proxy/vod")
    first = check(auth, policy, attempt.header(), uri="rtsp://proxy/vod", method="DESCRIBE")
    assert attempt.retry(first.status, [v for _, v in first.headers])
    for n in range(5):
        value = attempt.header() if n == 0 else client.authorization("DESCRIBE", "rtsp://proxy/vod")
        assert check(auth, policy, value, uri="rtsp://proxy/vod", now=n, method="DESCRIBE").ok


def test_wrong_password_unknown_user_and_wrong_uri():
    auth, policy = authenticator(max_failures=10), mufasa_policy()
    check(auth, policy, None)
    wrong = RFC7616_MD5_ANSWER.replace("8ca523f5", "0ca523f5")
    verdict = check(auth, policy, wrong)
    assert (verdict.status, verdict.detail) == (401, "player auth failed for user 'Mufasa': wrong password")
    assert check(auth, policy, RFC7616_MD5_ANSWER.replace('"Mufasa"', '"Simba"')).status == 401
    assert check(auth, policy, RFC7616_MD5_ANSWER, uri="/dir/other.html").status == 400
    assert check(auth, policy, RFC7616_MD5_ANSWER.replace("qop=auth", "qop=auth-int")).status == 400


def test_an_expired_nonce_gets_stale_true_then_a_fresh_nonce_works():
    nonces = iter([NONCE, "fresh-nonce"])
    auth, policy = authenticator(nonce_source=nonces.__next__), mufasa_policy()
    check(auth, policy, None, now=0.0)
    stale = check(auth, policy, RFC7616_MD5_ANSWER, now=31.0)  # right password, nonce unused for 31 s
    assert stale.status == 401 and "stale" in stale.detail
    challenges = parse_challenges([v for _, v in stale.headers])
    assert all(c.stale and c.get("nonce") == "fresh-nonce" for c in challenges)
    assert auth.failures == {}  # a stale nonce is no failed attempt


def test_sliding_nonce_lifetime_and_nc_window():
    auth, policy = authenticator(), mufasa_policy()
    check(auth, policy, None, now=0.0)
    client = ClientAuth(Credentials("Mufasa", "Circle of Life"), cnonce=lambda: "c")
    client.accept(parse_challenges(f'Digest realm="{REALM}", qop="auth", nonce="{NONCE}"')[0])
    values = [client.authorization("GET", "/dir/index.html") for _ in range(3)]
    for step, value in enumerate([values[0], values[2], values[1]]):  # out of order within the window
        assert check(auth, policy, value, now=25.0 * (step + 1)).ok  # each use keeps the nonce alive


def test_basic_rfc7617_example_checked_against_the_stored_hash():
    hashes = {"SHA-256": digest_ha1("SHA-256", "Aladdin", "WallyWorld", "open sesame")}
    policy = make_policy("basic", "WallyWorld", {"Aladdin": hashes})
    auth = authenticator()
    challenge = check(auth, policy, None)
    assert challenge.headers == (("WWW-Authenticate", 'Basic realm="WallyWorld", charset="UTF-8"'),)
    assert check(auth, policy, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").ok
    assert check(auth, policy, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ").status == 401  # bad base64
    assert check(auth, policy, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZT8=").status == 401  # "open sesame?"


def test_failed_attempts_are_throttled_per_address_within_the_window():
    policy = mufasa_policy("basic")
    auth = authenticator(max_failures=3, failure_window=60.0)
    bad = "Basic TXVmYXNhOm5vcGU="  # Mufasa:nope
    details = [check(auth, policy, bad, now=t).detail for t in (1, 2, 3)]
    assert "--auth-max-failures reached" in details[-1]
    good = "Basic TXVmYXNhOkNpcmNsZSBvZiBMaWZl"
    assert check(auth, policy, good, now=4).status == 403  # not even looked at
    assert check(auth, policy, good, now=4, address="192.0.2.9").ok  # another address
    assert check(auth, policy, good, now=61).ok  # the window ended


def test_forward_proxy_gets_407_and_proxy_authenticate():
    verdict = check(authenticator(), mufasa_policy(), None, proxy=True)
    assert (verdict.status, verdict.reason) == (407, "Proxy Authentication Required")
    assert {name for name, _ in verdict.headers} == {"Proxy-Authenticate"}


def test_tables_are_bounded():
    counter = iter(range(1000))
    auth = authenticator(max_nonces=5, max_addresses=5, nonce_source=lambda: f"n{next(counter)}")
    policy = mufasa_policy()
    for i in range(20):
        check(auth, policy, None)
        check(auth, policy, "Digest junk", address=f"192.0.2.{i}")
    assert len(auth.nonces) == 5 and len(auth.failures) == 5


def test_htdigest_file_and_policy_validation():
    md5 = digest_ha1("MD5", "alice", "proxy", "pw")
    sha = digest_ha1("SHA-256", "alice", "proxy", "pw")
    policy = parse_htdigest(f"# players\nalice:proxy:{md5}\nalice:proxy:{sha}\n\n")
    assert policy.users == {"alice": {"MD5": md5, "SHA-256": sha}} and policy.realm == "proxy"
    assert "pw" not in repr(policy) and md5 not in repr(policy)
    assert parse_htdigest(f"bob:proxy:{md5}").algorithms == ("MD5",)
    for bad in (f"a:r1:{md5}\nb:r2:{md5}", "a:r:1234", "a:r", f"a:b:r:{md5}", ""):
        with pytest.raises(PolicyError):
            parse_htdigest(bad)
    assert make_policy("open", "", {}) is None


def test_rfc2069_answers_without_qop_are_accepted_while_the_nonce_lives():
    """What GStreamer's rtspsrc and live555 players send: no qop, so no nc to check."""
    from proxyd.rtsp.auth import digest_response

    auth, policy = authenticator(), mufasa_policy()
    check(auth, policy, None)
    response = digest_response(algorithm="MD5", username="Mufasa", realm=REALM, password="Circle of Life",
                               method="GET", uri="/dir/index.html", nonce=NONCE)
    value = f'Digest username="Mufasa", realm="{REALM}", nonce="{NONCE}", uri="/dir/index.html", ' \
            f'response="{response}"'
    assert check(auth, policy, value, now=1.0).ok and check(auth, policy, value, now=2.0).ok
    assert check(auth, policy, value.replace(response[:6], "000000"), now=3.0).status == 401
    assert "stale" in check(auth, policy, value, now=40.0).detail
