#!/usr/bin/env python3
"""An OpenID Connect relying party built on authlib (PyPI), driven by tests/api/oidc.rs.

Usage: oidc_rp.py SCENARIO CONFIG_JSON. Prints one JSON object (what happened) on stdout; the
Rust test asserts on it. The OAuth and OpenID parts are authlib's: the authorization URL with
PKCE (S256), the token requests with client_secret_basic / none, refresh, revocation,
introspection, and the ID token's signature and claims checked against the provider's JWKS
(authlib.jose + CodeIDToken). The user agent (a browser already signed in to mamori's console,
following redirects by hand) is `requests` with the console's session cookie.

CONFIG: {"issuer", "client_id", "client_secret" (absent: a public client), "redirect_uri",
"session" (console session token, may be absent), "scope", "post_logout_redirect_uri"}.
"""

import html
import json
import re
import sys
import urllib.parse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def meta(cfg):
    r = requests.get(cfg["issuer"] + "/.well-known/openid-configuration", timeout=30)
    r.raise_for_status()
    m = r.json()
    # Two nodes behind one issuer: everything but the browser's authorization request at
    # the other node (`backend_at`).
    if cfg.get("backend_at"):
        for k in [
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
            "introspection_endpoint",
        ]:
            m[k] = m[k].replace(cfg["issuer"], cfg["backend_at"], 1)
    return m


def session(cfg, m, secret=None):
    public = "client_secret" not in cfg
    return OAuth2Session(
        cfg["client_id"],
        None if public else (secret or cfg["client_secret"]),
        scope=cfg.get("scope", "openid profile email groups"),
        redirect_uri=cfg["redirect_uri"],
        code_challenge_method="S256",
        token_endpoint_auth_method="none" if public else "client_secret_basic",
        revocation_endpoint_auth_method="none" if public else "client_secret_basic",
    )


def browser(cfg):
    """The user agent: no automatic redirects, the console session if there is one."""
    b = requests.Session()
    if cfg.get("session"):
        b.cookies.set("mamori_session", cfg["session"])
    return b


def authorize(cfg, m, extra=None, ua=None):
    """Runs the authorization request in the user agent; returns (client, verifier, nonce,
    state, response)."""
    client = session(cfg, m)
    verifier = generate_token(64)
    nonce = generate_token(20)
    uri, state = client.create_authorization_url(
        m["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **(extra or {})
    )
    ua = ua or browser(cfg)
    resp = ua.get(uri, allow_redirects=False, timeout=30)
    return client, verifier, nonce, state, resp


def callback_params(resp):
    loc = resp.headers.get("location", "")
    return loc, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))


def verify_id_token(cfg, m, id_token, nonce):
    keys = JsonWebKey.import_key_set(requests.get(m["jwks_uri"], timeout=30).json())
    claims = jwt.decode(
        id_token,
        keys,
        claims_cls=CodeIDToken,
        claims_options={
            "iss": {"essential": True, "value": cfg["issuer"]},
            "aud": {"essential": True, "value": cfg["client_id"]},
        },
        claims_params={"nonce": nonce, "client_id": cfg["client_id"]},
    )
    claims.validate(leeway=5)
    return dict(claims), jwt.decode(id_token, keys).header


def error_of(f):
    try:
        f()
        return None
    except Exception as e:  # authlib's OAuthError and requests' errors
        return getattr(e, "error", None) or type(e).__name__


def code_flow(cfg, m, extra=None):
    client, verifier, nonce, state, resp = authorize(cfg, m, extra)
    loc, params = callback_params(resp)
    out = {
        "status": resp.status_code,
        "redirected_to_client": loc.startswith(cfg["redirect_uri"]),
        "state_ok": params.get("state") == state,
        # RFC 9207: the response names its issuer.
        "iss_ok": params.get("iss") == cfg["issuer"],
        "has_code": "code" in params,
    }
    if "code" not in params:
        out["params"] = params
        return client, None, nonce, out
    token = client.fetch_token(
        m["token_endpoint"], authorization_response=loc, code_verifier=verifier
    )
    return client, token, nonce, out


def scenario_discovery(cfg):
    return meta(cfg)


def scenario_flow(cfg):
    m = meta(cfg)
    client, t1, nonce, out = code_flow(cfg, m)
    claims, header = verify_id_token(cfg, m, t1["id_token"], nonce)
    out["claims"] = claims
    out["header"] = header
    out["token_type"] = t1["token_type"]
    out["scope"] = t1.get("scope")
    out["userinfo"] = client.get(m["userinfo_endpoint"]).json()
    # Introspection, as a resource server would (authenticated as this client).
    out["introspect_active"] = client.introspect_token(
        m["introspection_endpoint"], token=t1["access_token"]
    ).json()
    out["introspect_unknown"] = client.introspect_token(
        m["introspection_endpoint"], token="not-a-token"
    ).json()
    # Refresh rotation.
    t2 = client.refresh_token(m["token_endpoint"], refresh_token=t1["refresh_token"])
    out["rotated"] = t2["refresh_token"] != t1["refresh_token"]
    claims2, _ = verify_id_token(cfg, m, t2["id_token"], None)
    out["refreshed_amr"] = claims2.get("amr")
    out["userinfo_after_refresh"] = requests.get(
        m["userinfo_endpoint"],
        headers={"Authorization": "Bearer " + t2["access_token"]},
        timeout=30,
    ).status_code
    # The first refresh token again: reuse, which revokes the whole family.
    out["reuse_error"] = error_of(
        lambda: client.refresh_token(m["token_endpoint"], refresh_token=t1["refresh_token"])
    )
    out["family_refresh_error"] = error_of(
        lambda: client.refresh_token(m["token_endpoint"], refresh_token=t2["refresh_token"])
    )
    out["family_userinfo_status"] = requests.get(
        m["userinfo_endpoint"],
        headers={"Authorization": "Bearer " + t2["access_token"]},
        timeout=30,
    ).status_code
    # Revocation (RFC 7009) of a new grant's access token, then of its refresh token.
    client3, t3, _, _ = code_flow(cfg, m)
    r = client3.revoke_token(
        m["revocation_endpoint"], token=t3["access_token"], token_type_hint="access_token"
    )
    out["revoke_status"] = r.status_code
    out["revoked_userinfo_status"] = requests.get(
        m["userinfo_endpoint"],
        headers={"Authorization": "Bearer " + t3["access_token"]},
        timeout=30,
    ).status_code
    out["introspect_revoked"] = client3.introspect_token(
        m["introspection_endpoint"], token=t3["access_token"]
    ).json()
    client3.revoke_token(
        m["revocation_endpoint"], token=t3["refresh_token"], token_type_hint="refresh_token"
    )
    out["revoked_refresh_error"] = error_of(
        lambda: client3.refresh_token(m["token_endpoint"], refresh_token=t3["refresh_token"])
    )
    return out


def scenario_id_token(cfg):
    """One code flow (with cfg["extra"] authorization parameters); the verified ID token."""
    m = meta(cfg)
    _, t, nonce, out = code_flow(cfg, m, cfg.get("extra"))
    if t is None:
        return out
    claims, header = verify_id_token(cfg, m, t["id_token"], nonce)
    out.update(claims=claims, header=header, id_token=t["id_token"], nonce=nonce)
    return out


def scenario_verify(cfg):
    """Verifies cfg["id_token"] against the provider's JWKS as it is now."""
    m = meta(cfg)
    try:
        claims, header = verify_id_token(cfg, m, cfg["id_token"], cfg["nonce"])
        return {"ok": True, "kid": header.get("kid"), "sub": claims["sub"]}
    except Exception as e:  # authlib's errors: an unknown kid, a bad signature
        return {"ok": False, "error": type(e).__name__}


def scenario_basic_op(cfg):
    """What the OpenID Foundation's Basic OP test plan asks that the other scenarios do not
    (docs/oidc.md, "OpenID Foundation Basic OP profile"): requests with parameters this
    provider ignores succeed, a request without nonce succeeds, scopes in another order,
    userinfo by GET, POST with the header and POST with the body, client_secret_post, and the
    errors for a missing response_type and for request objects."""
    m = meta(cfg)
    out = {}
    # oidcc-ensure-request-with-unknown-parameter-succeeds, -display-page, -display-popup,
    # -login-hint, -ui-locales, -claims-locales, -ensure-request-with-acr-values-succeeds,
    # -claims-essential (the claims parameter is not supported: ignored).
    for name, extra in [
        ("unknown", {"extra_parameter": "foobar"}),
        ("display_page", {"display": "page"}),
        ("display_popup", {"display": "popup"}),
        ("login_hint", {"login_hint": "alice"}),
        ("ui_locales", {"ui_locales": "se"}),
        ("claims_locales", {"claims_locales": "se"}),
        ("acr_values", {"acr_values": "1 2"}),
        ("claims", {"claims": json.dumps({"userinfo": {"name": {"essential": True}}})}),
        ("scope_order", {"scope": "email openid profile"}),
    ]:
        _, t, nonce, o = code_flow(cfg, m, extra)
        out[name] = bool(t) and verify_id_token(cfg, m, t["id_token"], nonce)[0]["sub"] != ""
    # oidcc-id-token-hint: prompt=none with the ID token just issued.
    _, t, _, _ = code_flow(cfg, m)
    _, t2, _, o = code_flow(cfg, m, {"prompt": "none", "id_token_hint": t["id_token"]})
    out["id_token_hint"] = bool(t2)
    # oidcc-ensure-request-without-nonce-succeeds-for-code-flow.
    client = session(cfg, m)
    verifier = generate_token(64)
    uri, state = client.create_authorization_url(
        m["authorization_endpoint"], code_verifier=verifier
    )
    assert "nonce=" not in uri
    loc, params = callback_params(browser(cfg).get(uri, allow_redirects=False, timeout=30))
    tok = client.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    claims, _ = verify_id_token(cfg, m, tok["id_token"], None)
    out["without_nonce"] = "nonce" not in claims
    # oidcc-userinfo-get, -post-header, -post-body.
    at = tok["access_token"]
    ui = m["userinfo_endpoint"]
    bearer = {"Authorization": "Bearer " + at}
    out["userinfo_get"] = requests.get(ui, headers=bearer, timeout=30).json().get("sub")
    out["userinfo_post_header"] = requests.post(ui, headers=bearer, timeout=30).json().get("sub")
    out["userinfo_post_body"] = requests.post(ui, data={"access_token": at}, timeout=30).json().get("sub")
    out["sub"] = claims["sub"]
    # The client_secret_post variant of the whole plan.
    post = OAuth2Session(
        cfg["client_id"],
        cfg["client_secret"],
        scope="openid",
        redirect_uri=cfg["redirect_uri"],
        token_endpoint_auth_method="client_secret_post",
    )
    uri, _ = post.create_authorization_url(m["authorization_endpoint"], nonce="n")
    loc, _ = callback_params(browser(cfg).get(uri, allow_redirects=False, timeout=30))
    out["client_secret_post"] = "id_token" in post.fetch_token(
        m["token_endpoint"], authorization_response=loc
    )
    # oidcc-response-type-missing, and request objects (not supported: refused as Core
    # §3.1.2.6 says).
    base = {"client_id": cfg["client_id"], "redirect_uri": cfg["redirect_uri"], "scope": "openid", "state": "s"}
    for name, q in [
        ("response_type_missing", dict(base)),
        ("request_object", dict(base, response_type="code", request="eyJhbGciOiJub25lIn0.e30.")),
        ("request_uri", dict(base, response_type="code", request_uri="https://rp.example/r")),
    ]:
        r = browser(cfg).get(m["authorization_endpoint"], params=q, allow_redirects=False, timeout=30)
        loc, params = callback_params(r)
        out[name] = {
            "to_client": loc.startswith(cfg["redirect_uri"]),
            "error": params.get("error"),
            "state": params.get("state"),
        }
    return out


def scenario_reused_code(cfg):
    m = meta(cfg)
    client, verifier, nonce, state, resp = authorize(cfg, m)
    loc, _ = callback_params(resp)
    t1 = client.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    before = client.get(m["userinfo_endpoint"]).status_code
    again = session(cfg, m)
    err = error_of(
        lambda: again.fetch_token(
            m["token_endpoint"], authorization_response=loc, code_verifier=verifier
        )
    )
    after = requests.get(
        m["userinfo_endpoint"],
        headers={"Authorization": "Bearer " + t1["access_token"]},
        timeout=30,
    ).status_code
    refresh = error_of(
        lambda: client.refresh_token(m["token_endpoint"], refresh_token=t1["refresh_token"])
    )
    return {"before": before, "second_use": err, "after": after, "refresh": refresh}


def scenario_expired_code(cfg):
    """A code redeemed after its 60 seconds (the wait is real: the server has no test clock)."""
    import time

    m = meta(cfg)
    client, verifier, _, _, resp = authorize(cfg, m)
    loc, params = callback_params(resp)
    time.sleep(cfg.get("wait", 62))
    err = error_of(
        lambda: client.fetch_token(
            m["token_endpoint"], authorization_response=loc, code_verifier=verifier
        )
    )
    return {"has_code": "code" in params, "error": err}


def scenario_pkce_mismatch(cfg):
    m = meta(cfg)
    client, verifier, nonce, state, resp = authorize(cfg, m)
    loc, _ = callback_params(resp)
    err = error_of(
        lambda: client.fetch_token(
            m["token_endpoint"], authorization_response=loc, code_verifier=generate_token(64)
        )
    )
    # The code is spent: the right verifier no longer helps.
    err2 = error_of(
        lambda: session(cfg, m).fetch_token(
            m["token_endpoint"], authorization_response=loc, code_verifier=verifier
        )
    )
    return {"error": err, "then_right_verifier": err2}


def scenario_wrong_secret(cfg):
    m = meta(cfg)
    _, verifier, _, _, resp = authorize(cfg, m)
    loc, _ = callback_params(resp)
    bad = session(cfg, m, secret="not-the-secret")
    err = error_of(
        lambda: bad.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    )
    # The raw answer: 401 with WWW-Authenticate for Basic (RFC 6749 §5.2).
    raw = requests.post(
        m["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": cfg["redirect_uri"]},
        auth=(cfg["client_id"], "not-the-secret"),
        timeout=30,
    )
    return {
        "error": err,
        "status": raw.status_code,
        "www_authenticate": raw.headers.get("www-authenticate"),
        "cache_control": raw.headers.get("cache-control"),
        "body": raw.json(),
    }


def scenario_unsupported_grant(cfg):
    m = meta(cfg)
    raw = requests.post(
        m["token_endpoint"],
        data={"grant_type": "password", "username": "a", "password": "b"},
        auth=(cfg["client_id"], cfg["client_secret"]),
        timeout=30,
    )
    return {"status": raw.status_code, "body": raw.json()}


def scenario_wrong_redirect(cfg):
    m = meta(cfg)
    c = dict(cfg, redirect_uri="https://evil.example/cb")
    _, _, _, _, resp = authorize(c, m)
    return {
        "status": resp.status_code,
        "location": resp.headers.get("location"),
        "body_names_it": "redirect URI" in resp.text,
    }


def scenario_prompt_none(cfg):
    m = meta(cfg)
    c = dict(cfg)
    c.pop("session", None)
    _, _, _, state, resp = authorize(c, m, {"prompt": "none"})
    loc, params = callback_params(resp)
    return {
        "status": resp.status_code,
        "redirected_to_client": loc.startswith(cfg["redirect_uri"]),
        "error": params.get("error"),
        "state_ok": params.get("state") == state,
        "iss_ok": params.get("iss") == cfg["issuer"],
    }


def scenario_prompt_login(cfg):
    """prompt=login with a session: the session ends, the browser signs in again, and the
    request it comes back with no longer says prompt=login (or it would loop)."""
    m = meta(cfg)
    ua = browser(cfg)
    _, _, _, _, resp = authorize(cfg, m, {"prompt": "login"}, ua=ua)
    cookies = resp.headers.get("set-cookie", "")
    kept = urllib.parse.unquote(ua.cookies.get("mamori_oidc") or "")
    _, _, _, _, after = authorize(cfg, m, {"prompt": "none"})
    return {
        "status": resp.status_code,
        "to": resp.headers.get("location"),
        "session_cleared": "mamori_session=;" in cookies,
        "kept_has_client": ("client_id=" + cfg["client_id"]) in kept,
        "kept_has_prompt": "prompt=" in kept,
        "old_session_after": callback_params(after)[1].get("error"),
    }


def scenario_denied(cfg):
    m = meta(cfg)
    _, _, _, _, resp = authorize(cfg, m)
    loc, params = callback_params(resp)
    return {
        "redirected_to_client": loc.startswith(cfg["redirect_uri"]),
        "error": params.get("error"),
        "has_code": "code" in params,
    }


def onward(resp):
    """Where the console sends the browser next: a redirect's Location, or, after one of its
    own forms, the address of the page that refreshes onward (the console's CSP `form-action
    'self'` would stop a redirect chain that leaves its origin)."""
    if 300 <= resp.status_code < 400:
        return resp.headers.get("location", "")
    found = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]*)">', resp.text)
    return html.unescape(found.group(1)) if found else ""


def hidden(page, name):
    found = re.search(r'name="%s" value="([^"]*)"' % name, page)
    return html.unescape(found.group(1)) if found else None


def scenario_consent(cfg):
    m = meta(cfg)
    ua = browser(cfg)
    client, verifier, nonce, state, resp = authorize(cfg, m, ua=ua)
    out = {"first_status": resp.status_code, "page_names_client": "consent-form" in resp.text}
    csrf = ua.cookies.get("mamori_csrf")
    request = hidden(resp.text, "request")
    r = ua.post(
        cfg["issuer"] + "/oidc/consent",
        data={"csrf": csrf, "request": request, "decision": "allow"},
        headers={"Origin": cfg["issuer"]},
        allow_redirects=False,
        timeout=30,
    )
    loc = onward(r)
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    out["after_allow"] = r.status_code
    out["code_after_allow"] = "code" in params and params.get("state") == state
    if "code" not in params:
        out["location"] = loc
        out["page"] = r.text[:2000]
        return out
    token = client.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    out["id_token_ok"] = verify_id_token(cfg, m, token["id_token"], nonce)[0]["aud"] == cfg["client_id"]
    # Remembered: the next request goes straight back with a code.
    _, _, _, _, resp2 = authorize(cfg, m, ua=ua)
    out["second_has_code"] = "code" in callback_params(resp2)[1]
    return out


def scenario_return_after_sign_in(cfg):
    """No session: the browser is sent to sign in, the request kept in a cookie; once signed
    in (the test signed in through the API; the cookie is the same), the console's dashboard
    sends the browser back to the authorization request, which answers with a code."""
    m = meta(cfg)
    c = dict(cfg)
    session_token = c.pop("session")
    ua = browser(c)
    client, verifier, nonce, state, resp = authorize(c, m, ua=ua)
    out = {"first": resp.status_code, "to_sign_in": resp.headers.get("location")}
    ua.cookies.set("mamori_session", session_token)
    back = ua.get(cfg["issuer"] + "/", allow_redirects=False, timeout=30)
    out["dashboard_status"] = back.status_code
    out["dashboard_to"] = onward(back)
    again = ua.get(cfg["issuer"] + out["dashboard_to"], allow_redirects=False, timeout=30)
    loc, params = callback_params(again)
    out["code"] = "code" in params and params.get("state") == state
    token = client.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    out["amr"] = verify_id_token(cfg, m, token["id_token"], nonce)[0]["amr"]
    return out


def scenario_logout(cfg):
    m = meta(cfg)
    ua = browser(cfg)
    q = urllib.parse.urlencode(
        {
            "client_id": cfg["client_id"],
            "post_logout_redirect_uri": cfg["post_logout_redirect_uri"],
            "state": "bye",
        }
    )
    page = ua.get(m["end_session_endpoint"] + "?" + q, allow_redirects=False, timeout=30)
    out = {"confirm_status": page.status_code}
    r = ua.post(
        cfg["issuer"] + "/oidc/logout",
        data={"csrf": ua.cookies.get("mamori_csrf"), "request": hidden(page.text, "request")},
        headers={"Origin": cfg["issuer"]},
        allow_redirects=False,
        timeout=30,
    )
    out["logout_status"] = r.status_code
    out["logout_to"] = onward(r)
    # An unregistered post-logout address is never used.
    bad = requests.get(
        m["end_session_endpoint"]
        + "?"
        + urllib.parse.urlencode(
            {"client_id": cfg["client_id"], "post_logout_redirect_uri": "https://evil.example/"}
        ),
        allow_redirects=False,
        timeout=30,
    )
    out["unregistered_to"] = bad.headers.get("location")
    # The session is over: prompt=none now answers login_required.
    _, _, _, _, resp = authorize(cfg, m, {"prompt": "none"})
    out["after"] = callback_params(resp)[1].get("error")
    return out


def scenario_grant(cfg):
    """#17 consents: one sign-in through the client (with the consent page when the client
    asks for it); the tokens, for the test to check what revoking the consent ends."""
    m = meta(cfg)
    ua = browser(cfg)
    client, verifier, nonce, state, resp = authorize(cfg, m, ua=ua)
    asked = resp.status_code == 200 and "consent-form" in resp.text
    loc = resp.headers.get("location", "")
    if asked:
        r = ua.post(
            cfg["issuer"] + "/oidc/consent",
            data={
                "csrf": ua.cookies.get("mamori_csrf"),
                "request": hidden(resp.text, "request"),
                "decision": "allow",
            },
            headers={"Origin": cfg["issuer"]},
            allow_redirects=False,
            timeout=30,
        )
        loc = onward(r)
    token = client.fetch_token(m["token_endpoint"], authorization_response=loc, code_verifier=verifier)
    return {
        "asked_consent": asked,
        "access_token": token["access_token"],
        "refresh_token": token["refresh_token"],
    }


def main():
    scenario, cfg = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()["scenario_" + scenario](cfg)))


if __name__ == "__main__":
    main()
