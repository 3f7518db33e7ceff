"""proxyd.rtsp.auth: WWW-Authenticate parsing, Basic/Digest Authorization building, the retry rules.

Worked examples: RFC 2617 section 2 (Aladdin) and 3.5 (Mufasa / "Circle Of Life"), RFC 7617 section
2 (Aladdin), RFC 7616 section 3.9.1 (MD5 and SHA-256). RFC 7616 section 3.9.2's published
SHA-512-256 values are known to be wrong (errata 4897); that example is checked against the
section 3.4 formulas computed here with hashlib instead.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from proxyd.rtsp.auth import (
    AuthError,
    Challenge,
    ClientAuth,
    Credentials,
    basic_authorization,
    choose,
    digest_authorization,
    digest_response,
    parse_challenges,
)
from proxyd.rtsp.connection import Role, RtspConnection
from proxyd.rtsp.events import Response

RFC2617_CHALLENGE = ('Digest\r\n realm="testrealm@host.com",\r\n qop="auth,auth-int",\r\n'
                     ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\r\n'
                     ' opaque="5ccc069c403ebaf9f0171e9517f40e41"')
RFC7616_SHA256 = ('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
                  'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
                  'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
RFC7616_MD5 = RFC7616_SHA256.replace("SHA-256", "MD5")
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def authorization_params(value: str) -> dict[str, str]:
    """Parse an Authorization value with the same lenient parser (credentials share the grammar)."""
    (parsed,) = parse_challenges(value)
    return {"scheme": parsed.scheme, **parsed.params}


# --- Basic ---------------------------------------------------------------------------------------

def test_basic_worked_example_rfc2617_and_rfc7617():
    assert basic_authorization(Credentials("Aladdin", "open sesame")) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


def test_basic_is_utf8_and_refuses_a_colon_in_the_user_id_and_control_characters():
    value = basic_authorization(Credentials("test", "123\u00a3"))
    assert base64.b64decode(value.split()[1]) == "test:123\u00a3".encode()
    assert basic_authorization(Credentials("u", "pa:ss")).startswith("Basic ")  # ':' in a password is fine
    with pytest.raises(AuthError):
        basic_authorization(Credentials("a:b", "x"))
    with pytest.raises(AuthError):
        basic_authorization(Credentials("u", "x\r\nInjected: 1"))


# --- Digest worked examples ----------------------------------------------------------------------

def test_digest_worked_example_rfc2617():
    (challenge,) = parse_challenges(RFC2617_CHALLENGE)
    value = digest_authorization(challenge, Credentials("Mufasa", "Circle Of Life"), method="GET",
                                 uri="/dir/index.html", nc=1, cnonce="0a4f113b")
    assert authorization_params(value) == {
        "scheme": "digest", "username": "Mufasa", "realm": "testrealm@host.com",
        "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "uri": "/dir/index.html", "qop": "auth",
        "nc": "00000001", "cnonce": "0a4f113b", "response": "6629fae49393a05397450978507c4ef1",
        "opaque": "5ccc069c403ebaf9f0171e9517f40e41"}


@pytest.mark.parametrize("challenge, response", [
    (RFC7616_MD5, "8ca523f5e9506fed4657c9700eebdbec"),
    (RFC7616_SHA256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_digest_worked_examples_rfc7616(challenge, response):
    (parsed,) = parse_challenges(challenge)
    value = digest_authorization(parsed, Credentials("Mufasa", "Circle of Life"), method="GET",
                                 uri="/dir/index.html", nc=1, cnonce=RFC7616_CNONCE)
    params = authorization_params(value)
    assert params["response"] == response
    assert (params["algorithm"], params["qop"], params["nc"], params["cnonce"], params["opaque"]) == (
        parsed.params["algorithm"], "auth", "00000001", RFC7616_CNONCE, parsed.params["opaque"])


def test_sha512_256_userhash_example_of_rfc7616_by_the_formulas():
    if "sha512_256" not in hashlib.algorithms_available:
        pytest.skip("OpenSSL without SHA-512/256")
    challenge = ('Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, '
                 'nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", '
                 'opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true')
    user, password = "J\u00e4s\u00f8n Doe", "Secret, or not?"
    cnonce = "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v"
    (parsed,) = parse_challenges(challenge)
    assert choose([parsed]) is parsed
    params = authorization_params(digest_authorization(parsed, Credentials(user, password), method="GET",
                                                       uri="/doe.json", nc=1, cnonce=cnonce))

    def h(text: str) -> str:
        return hashlib.new("sha512_256", text.encode()).hexdigest()

    ha1 = h(f"{user}:api@example.org:{password}")
    nonce = "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK"
    expected = h(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{h('GET:/doe.json')}")
    assert params["username"] == h(f"{user}:api@example.org")
    assert params["userhash"] == "true"
    assert params["response"] == expected


def test_md5_sess_auth_int_and_the_rfc2069_form_follow_the_formulas():
    def md5(text: str | bytes) -> str:
        return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()

    ha1 = md5(f"{md5('u:r:p')}:n:c")
    body = b"v=0\r\n"
    sess = digest_response(algorithm="MD5-sess", username="u", realm="r", password="p", method="SETUP",
                           uri="rtsp://o/x", nonce="n", qop="auth-int", nc="00000002", cnonce="c", body=body)
    assert sess == md5(f"{ha1}:n:00000002:c:auth-int:{md5('SETUP:rtsp://o/x:' + md5(body))}")
    assert digest_response(algorithm="MD5", username="u", realm="r", password="p", method="PLAY",
                           uri="rtsp://o/x", nonce="n") == md5(f"{md5('u:r:p')}:n:{md5('PLAY:rtsp://o/x')}")


def test_gstreamer_style_challenge_without_qop_is_answered_in_the_rfc2069_form():
    (challenge,) = parse_challenges('Digest realm="gst-origin", nonce="283fb229237b80b6"')
    params = authorization_params(digest_authorization(challenge, Credentials("alice", "s3cr:et"),
                                                       method="DESCRIBE", uri="rtsp://o:8600/clip"))
    assert set(params) == {"scheme", "username", "realm", "nonce", "uri", "response"}  # no qop, nc, cnonce
    assert params["response"] == digest_response(algorithm="MD5", username="alice", realm="gst-origin",
                                                 password="s3cr:et", method="DESCRIBE",
                                                 uri="rtsp://o:8600/clip", nonce="283fb229237b80b6")


# --- strict sending ------------------------------------------------------------------------------

def test_quoted_values_are_escaped_and_control_characters_refused():
    challenge = Challenge("digest", {"realm": 'a "quoted" \\ realm', "nonce": "n"})
    value = digest_authorization(challenge, Credentials('bo"b', "p"), method="OPTIONS", uri="*")
    assert 'realm="a \\"quoted\\" \\\\ realm"' in value and 'username="bo\\"b"' in value
    assert authorization_params(value)["realm"] == 'a "quoted" \\ realm'
    with pytest.raises(AuthError):
        digest_authorization(challenge, Credentials("bob\r\nX: y", "p"), method="OPTIONS", uri="*")


def test_non_ascii_user_goes_as_username_star():
    value = digest_authorization(Challenge("digest", {"realm": "r", "nonce": "n"}),
                                 Credentials("J\u00e4s\u00f8n", "p"), method="DESCRIBE", uri="rtsp://o/x")
    assert "username*=UTF-8''J%C3%A4s%C3%B8n" in value and "username=" not in value


def test_unusable_challenges_are_refused():
    with pytest.raises(AuthError):
        digest_authorization(Challenge("digest", {"realm": "r", "nonce": "n", "algorithm": "SHA-1"}),
                             Credentials("u", "p"), method="PLAY", uri="rtsp://o/x")
    with pytest.raises(AuthError):
        digest_authorization(Challenge("digest", {"realm": "r"}), Credentials("u", "p"), method="PLAY",
                             uri="x")
    with pytest.raises(AuthError):
        digest_authorization(Challenge("digest", {"realm": "r", "nonce": "n", "qop": "auth-conf"}),
                             Credentials("u", "p"), method="PLAY", uri="x", cnonce="c")


# --- lenient parsing ----------------------------------------------------------------------------

def test_several_challenges_in_one_header_and_in_several_headers():
    one = parse_challenges('Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"')
    assert [(c.scheme, dict(c.params)) for c in one] == [
        ("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
        ("basic", {"realm": "simple"})]
    several = parse_challenges(['Basic realm="b"', RFC7616_MD5, RFC7616_SHA256])
    assert [c.scheme for c in several] == ["basic", "digest", "digest"]
    assert choose(several).algorithm == "SHA-256"  # strongest Digest over Basic
    assert choose(several[:1]).scheme == "basic"
    assert choose(parse_challenges('Negotiate abc==, NTLM')) is None  # nothing we can answer


def test_odd_spacing_commas_in_quoted_strings_unquoted_values_and_case():
    (c,) = parse_challenges('  DIGEST   Realm = "a, b"  ,,NONCE=abc ,  qop= "auth-int , auth",'
                            'algorithm = md5-sess,stale=TRUE,opaque="x\\\\y"')
    assert c.scheme == "digest"
    assert dict(c.params) == {"realm": "a, b", "nonce": "abc", "qop": "auth-int , auth",
                              "algorithm": "md5-sess", "stale": "TRUE", "opaque": "x\\y"}
    assert (c.algorithm, c.qops, c.stale) == ("MD5-SESS", ("auth-int", "auth"), True)


def test_token68_duplicates_junk_and_unterminated_quotes():
    challenges = parse_challenges('Bearer abc.def==, Basic realm="r", realm="dup", @@@, '
                                  'Digest nonce="n, realm="never closed')
    assert challenges[0] == Challenge("bearer", {}, "abc.def==")
    assert challenges[1].params == {"realm": "r"}  # the first of duplicates wins
    assert challenges[-1].scheme == "digest" and challenges[-1].get("nonce").startswith("n, ")
    assert parse_challenges("") == [] and parse_challenges(", ,") == []


def test_challenges_from_a_raw_401_response_with_two_headers():
    raw = (b"RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\n"
           b'WWW-Authenticate: Basic realm="gst"\r\n'
           b'WWW-Authenticate: Digest realm="gst", nonce="ab12", stale=FALSE\r\n\r\n')
    conn = RtspConnection(Role.CLIENT)
    conn.receive_data(raw)
    resp = conn.next_event()
    assert isinstance(resp, Response) and resp.status == 401
    chosen = choose(parse_challenges(resp.headers.get_all("WWW-Authenticate")))
    assert (chosen.scheme, chosen.get("nonce"), chosen.stale) == ("digest", "ab12", False)


# --- state: reuse, nc, retry rules ---------------------------------------------------------------

def counter_cnonce():
    n = iter(range(1, 100))
    return lambda: f"cn{next(n)}"


def test_the_same_challenge_is_reused_with_nc_counting_up_and_a_new_nonce_resets_it():
    auth = ClientAuth(Credentials("Mufasa", "Circle Of Life"), cnonce=counter_cnonce())
    assert auth.authorization("OPTIONS", "*") is None  # nothing before a challenge
    auth.accept(parse_challenges(RFC2617_CHALLENGE)[0])
    first = authorization_params(auth.authorization("DESCRIBE", "rtsp://o/a"))
    second = authorization_params(auth.authorization("SETUP", "rtsp://o/a/trackID=0"))
    assert (first["nc"], second["nc"]) == ("00000001", "00000002")
    assert first["cnonce"] == second["cnonce"] == "cn1"
    auth.accept(Challenge("digest", {"realm": "r", "nonce": "fresh", "qop": "auth"}))
    third = authorization_params(auth.authorization("PLAY", "rtsp://o/a"))
    assert (third["nc"], third["cnonce"], third["nonce"]) == ("00000001", "cn2", "fresh")


def test_a_401_is_answered_once_and_wrong_credentials_are_not_retried():
    auth = ClientAuth(Credentials("u", "wrong"))
    attempt = auth.attempt("DESCRIBE", "rtsp://o/x")
    assert attempt.header() is None
    assert attempt.retry(401, ['Digest realm="r", nonce="n1"'])
    assert attempt.header().startswith("Digest ")
    assert not attempt.retry(401, ['Digest realm="r", nonce="n1"'])
    assert attempt.outcome == "rejected" and attempt.sends == 2
    assert not attempt.retry(200, []) and attempt.outcome == ""
    later = auth.attempt("PLAY", "rtsp://o/x")  # preemptive on the same connection
    assert later.header().startswith("Digest ")


def test_stale_nonce_is_retried_once():
    auth = ClientAuth(Credentials("u", "p"))
    attempt = auth.attempt("SETUP", "rtsp://o/x")
    attempt.header()
    assert attempt.retry(401, ['Digest realm="r", nonce="n1"'])
    assert 'nonce="n1"' in attempt.header()
    assert attempt.retry(401, ['Digest realm="r", nonce="n2", stale=true'])
    assert 'nonce="n2"' in attempt.header()
    assert not attempt.retry(401, ['Digest realm="r", nonce="n3", stale=true'])
    assert attempt.outcome in ("rejected", "exhausted") and attempt.sends == 3


def test_a_preemptive_answer_to_an_expired_nonce_gets_one_fresh_try():
    auth = ClientAuth(Credentials("u", "p"))
    auth.accept(Challenge("digest", {"realm": "r", "nonce": "old"}))
    attempt = auth.attempt("PLAY", "rtsp://o/x")
    assert 'nonce="old"' in attempt.header()
    assert attempt.retry(401, ['Digest realm="r", nonce="new"'])  # changed nonce, no stale flag
    assert 'nonce="new"' in attempt.header()
    assert not attempt.retry(401, ['Digest realm="r", nonce="newer"'])
    basic = ClientAuth(Credentials("u", "p"))
    basic.accept(Challenge("basic", {"realm": "r"}))
    preemptive = basic.attempt("PLAY", "rtsp://o/x")
    preemptive.header()
    assert not preemptive.retry(401, ['Basic realm="r"']) and preemptive.outcome == "rejected"


def test_challenges_we_cannot_answer_end_the_attempt():
    attempt = ClientAuth(Credentials("a:b", "p")).attempt("DESCRIBE", "rtsp://o/x")
    attempt.header()
    assert not attempt.retry(401, ['Basic realm="r"']) and attempt.outcome == "unusable"
    assert attempt.auth.challenge is None  # nothing half-accepted
    other = ClientAuth(Credentials("u", "p")).attempt("DESCRIBE", "rtsp://o/x")
    other.header()
    assert not other.retry(401, ['Negotiate', 'Digest realm="r", nonce="n", algorithm=SHA-1'])
    assert other.outcome == "unsupported"


def test_credentials_never_show_the_password():
    creds = Credentials("alice", "hunter2")
    auth = ClientAuth(creds)
    auth.accept(Challenge("basic", {"realm": "r"}))
    for text in (repr(creds), str(creds), repr(auth), repr(auth.attempt("PLAY", "x"))):
        assert "hunter2" not in text
