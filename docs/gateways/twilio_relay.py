#!/usr/bin/env python3
"""A phone gateway for mamori-server that relays its webhook to Twilio's HTTP API.

UNTESTED AGAINST TWILIO ITSELF: this recipe follows Twilio's published REST API (Messages and
Calls resources, API version 2010-04-01) but has only been run against a stand-in on loopback.
Try it with `mamori-server admin test-phone NUMBER` and `--voice` before users depend on it.

mamori-server (`[phone] provider = "webhook"`) POSTs one JSON message per code, version 1
(docs/recovery.md, "Phone gateway"):

    {"version": 1, "id": "...", "to": "+819012345678", "purpose": "...", "code": "123456",
     "message": "...", "service": "mamori", "timestamp": 1764300000, "channel": "sms"}

with `X-Mamori-Timestamp` and `X-Mamori-Signature: sha256=HEX`, HEX being HMAC-SHA256 under the
shared secret of `TIMESTAMP + "." + BODY`. This relay:

1. refuses a body whose signature does not match (constant-time) or whose timestamp is more than
   MAX_AGE seconds away from now, so a captured request cannot be replayed later;
2. drops a repeated `id` (answers 204 again without sending twice);
3. sends `message` as an SMS (Messages API) for `channel` "sms" or a missing channel, or places
   a call that speaks it with TwiML <Say> (Calls API) for "voice";
4. answers 204 when Twilio accepted the request, 502 when it did not: mamori then tells the user
   the code was not sent and makes it unusable.

It never logs the code or the message text. Python 3 standard library only.

Environment:
    MAMORI_WEBHOOK_SECRET_FILE  file with the shared secret (the same file as mamori's
                                `phone.secret_file`; surrounding white space ignored)
    TWILIO_ACCOUNT_SID          the account SID (ACxxxxxxxx...)
    TWILIO_AUTH_TOKEN_FILE      file with the auth token (or an API key secret, with
                                TWILIO_API_KEY_SID set to the key's SID)
    TWILIO_API_KEY_SID          optional: authenticate with an API key instead of the account
    TWILIO_FROM                 the Twilio number to send and call from, E.164 (+15005550006)
    TWILIO_VOICE_LANGUAGE       optional <Say> language, e.g. ja-JP or en-US
    RELAY_LISTEN                optional, default 127.0.0.1:8787
    MAX_AGE                     optional, seconds, default 300
    TWILIO_API_BASE             optional, default https://api.twilio.com (for a local stand-in)
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

MAX_BODY = 64 * 1024
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# mamori waits at most about 8 seconds for the answer: give up on Twilio before that.
TWILIO_TIMEOUT = 6


def read_secret(path):
    with open(path, "rb") as f:
        return f.read().strip()


def config():
    env = os.environ
    try:
        cfg = {
            "secret": read_secret(env["MAMORI_WEBHOOK_SECRET_FILE"]),
            "sid": env["TWILIO_ACCOUNT_SID"],
            "token": read_secret(env["TWILIO_AUTH_TOKEN_FILE"]).decode("utf-8"),
            "from": env["TWILIO_FROM"],
        }
    except KeyError as e:
        sys.exit(f"twilio_relay: set {e.args[0]} (see the top of this file)")
    except OSError as e:
        sys.exit(f"twilio_relay: cannot read a secret file: {e.strerror} ({e.filename})")
    if len(cfg["secret"]) < 16:
        sys.exit("twilio_relay: the shared secret must hold at least 16 bytes, as for mamori")
    cfg["user"] = env.get("TWILIO_API_KEY_SID") or cfg["sid"]
    cfg["language"] = env.get("TWILIO_VOICE_LANGUAGE", "")
    cfg["max_age"] = int(env.get("MAX_AGE", "300"))
    cfg["api"] = env.get("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/")
    host, _, port = env.get("RELAY_LISTEN", "127.0.0.1:8787").rpartition(":")
    cfg["listen"] = (host or "127.0.0.1", int(port))
    return cfg


def masked(number):
    """Enough of a number to follow a message in the log, not enough to learn it."""
    return number[:3] + "..." + number[-2:] if len(number) > 6 else "..."


def signature_ok(secret, timestamp, body, header):
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), header)


def twiml(message, language):
    """A call that reads the message (mamori already spaces the digits and repeats the code)."""
    lang = f' language="{escape(language)}"' if language else ""
    return f"<Response><Say{lang}>{escape(message)}</Say></Response>"


def twilio_post(cfg, resource, fields):
    """POST to /2010-04-01/Accounts/SID/RESOURCE.json; returns (ok, HTTP status)."""
    url = "{}/2010-04-01/Accounts/{}/{}.json".format(
        cfg["api"], urllib.parse.quote(cfg["sid"], safe=""), resource
    )
    basic = base64.b64encode(f"{cfg['user']}:{cfg['token']}".encode("utf-8")).decode("ascii")
    req = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode("utf-8"),
        headers={
            "Authorization": "Basic " + basic,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=TWILIO_TIMEOUT) as resp:
            return 200 <= resp.status < 300, resp.status
    except urllib.error.HTTPError as e:
        return False, e.code
    except (urllib.error.URLError, OSError):
        return False, 0


class Seen:
    """Message ids already sent, kept a little longer than a message may be replayed."""

    def __init__(self, keep):
        self.keep = keep
        self.ids = {}
        self.lock = threading.Lock()

    def first_time(self, msg_id, now):
        with self.lock:
            for old, at in list(self.ids.items()):
                if now - at > self.keep:
                    del self.ids[old]
            if msg_id in self.ids:
                return False
            self.ids[msg_id] = now
            return True

    def forget(self, msg_id):
        with self.lock:
            self.ids.pop(msg_id, None)


def handler(cfg, seen):
    class Relay(BaseHTTPRequestHandler):
        server_version = "mamori-twilio-relay"

        def answer(self, status):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            # The default logs the request line only (no body); keep it on stderr.
            sys.stderr.write("twilio_relay: " + (fmt % args) + "\n")

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                return self.answer(411)
            if length <= 0 or length > MAX_BODY:
                return self.answer(413)
            body = self.rfile.read(length)
            timestamp = self.headers.get("X-Mamori-Timestamp", "")
            sig = self.headers.get("X-Mamori-Signature", "")
            now = time.time()
            if not timestamp.isdigit() or abs(now - int(timestamp)) > cfg["max_age"]:
                return self.answer(401)
            if not signature_ok(cfg["secret"], timestamp, body, sig):
                return self.answer(401)
            try:
                msg = json.loads(body)
            except ValueError:
                return self.answer(400)
            if not isinstance(msg, dict) or msg.get("version") != 1:
                return self.answer(400)
            to, text = msg.get("to"), msg.get("message")
            channel = msg.get("channel") or "sms"
            msg_id = str(msg.get("id", ""))
            if not isinstance(to, str) or not E164.match(to) or not isinstance(text, str):
                return self.answer(400)
            if channel not in ("sms", "voice") or not msg_id:
                return self.answer(400)
            if not seen.first_time(msg_id, now):
                return self.answer(204)
            if channel == "voice":
                ok, status = twilio_post(
                    cfg,
                    "Calls",
                    {"To": to, "From": cfg["from"], "Twiml": twiml(text, cfg["language"])},
                )
            else:
                ok, status = twilio_post(
                    cfg, "Messages", {"To": to, "From": cfg["from"], "Body": text}
                )
            sys.stderr.write(
                f"twilio_relay: {channel} {msg_id} to {masked(to)}: twilio answered {status}\n"
            )
            if not ok:
                # Not sent: a retry of the same id may try again.
                seen.forget(msg_id)
                return self.answer(502)
            return self.answer(204)

    return Relay


def main():
    cfg = config()
    seen = Seen(keep=2 * cfg["max_age"])
    server = ThreadingHTTPServer(cfg["listen"], handler(cfg, seen))
    sys.stderr.write("twilio_relay: listening on http://{}:{}/\n".format(*cfg["listen"]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
