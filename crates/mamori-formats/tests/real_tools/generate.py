#!/usr/bin/env python3
"""Fixtures for mamori's import tests, written by libraries other than mamori's own code.

    generate.py write OUTDIR              write every fixture and OUTDIR/manifest.json
    generate.py read-aegis FILE PASSWORD  decrypt an Aegis vault, print its entries (normalised)
    generate.py read-google FILE          decode otpauth-migration:// lines, print the entries
    generate.py read-otpauth FILE         parse otpauth:// lines with pyotp, print the entries

The input accounts are accounts.json (next to this script). What writes what:

  otpauth            pyotp's provisioning_uri (pyotp is an independent otpauth implementation)
  google-migration   protoc + the protobuf runtime, from migration.proto
  aegis (encrypted)  the `cryptography` package's scrypt and AES-256-GCM, layout per Aegis's
                     docs/vault.md; content JSON per the same document
  andotp (encrypted) `cryptography` PBKDF2-HMAC-SHA1 and AES-256-GCM, layout per andOTP's
                     EncryptionHelper / BackupHelper
  2fas (encrypted)   `cryptography` PBKDF2-HMAC-SHA256 and AES-256-GCM, layout per 2FAS's
                     BackupContent.kt / backup crypto
  ente (encrypted)   libsodium itself (through PyNaCl): crypto_pwhash Argon2id and
                     crypto_secretstream_xchacha20poly1305; plaintext = pyotp URIs

The JSON framing of Aegis, andOTP and 2FAS is still written here from the apps' published
descriptions (not by the apps); the cryptography and encodings are not mamori's.

Needs (Debian packages, installed by .ci/run): python3-cryptography python3-nacl python3-pyotp
python3-protobuf protobuf-compiler. Nothing here is copied from another project.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
PASSWORD = "correct horse battery staple"


def die(msg):
    print(f"generate.py: {msg}", file=sys.stderr)
    sys.exit(2)


try:
    import pyotp
    import nacl
    import nacl.bindings as sodium
    import nacl.pwhash.argon2id
    import cryptography
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
    import google.protobuf
except ImportError as e:
    die(f"missing Python module ({e}); install python3-cryptography python3-nacl "
        "python3-pyotp python3-protobuf protobuf-compiler (see .ci/run)")


def accounts():
    with open(os.path.join(HERE, "accounts.json"), encoding="utf-8") as f:
        return json.load(f)


def secret_bytes(a):
    s = a["secret"]
    return base64.b32decode(s + "=" * (-len(s) % 8))


def b32(raw):
    return base64.b32encode(raw).decode().rstrip("=")


def migration_module():
    """Compiles migration.proto with protoc and imports the generated module."""
    out = tempfile.mkdtemp(prefix="mamori-proto-")
    try:
        subprocess.run(["protoc", f"--proto_path={HERE}", f"--python_out={out}",
                        os.path.join(HERE, "migration.proto")], check=True)
    except FileNotFoundError:
        die("protoc not found; install protobuf-compiler (see .ci/run)")
    sys.path.insert(0, out)
    import migration_pb2  # noqa: E402
    return migration_pb2


# ------------------------------------------------------------------------------- otpauth


def pyotp_uri(a):
    digest = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}[a["algorithm"]]
    import hashlib
    issuer = a["issuer"] or None
    if a["type"] == "hotp":
        otp = pyotp.HOTP(a["secret"], digits=a["digits"], digest=getattr(hashlib, digest))
        return otp.provisioning_uri(name=a["name"], initial_count=a["counter"], issuer_name=issuer)
    otp = pyotp.TOTP(a["secret"], digits=a["digits"], digest=getattr(hashlib, digest),
                     interval=a["period"])
    return otp.provisioning_uri(name=a["name"], issuer_name=issuer)


def uri_accounts(accts):
    # pyotp has no Steam type.
    return [i for i, a in enumerate(accts) if a["type"] in ("totp", "hotp")]


# ------------------------------------------------------------------------------- Google


def google_accounts(accts):
    # The payload has no period and only 6 or 8 digits.
    return [i for i, a in enumerate(accts)
            if a["type"] == "hotp" or (a["type"] == "totp" and a["period"] == 30)
            if a["digits"] in (6, 8)]


def google_lines(accts, idx, batch_size):
    pb = migration_module()
    P = pb.MigrationPayload
    chunks = [idx[i::batch_size] for i in range(batch_size)]
    lines = []
    for n, chunk in enumerate(chunks):
        payload = P(version=1, batch_size=batch_size, batch_index=n, batch_id=-1234567)
        for i in chunk:
            a = accts[i]
            p = payload.otp_parameters.add()
            p.secret = secret_bytes(a)
            p.name = a["name"]
            p.issuer = a["issuer"]
            p.algorithm = {"SHA1": P.SHA1, "SHA256": P.SHA256, "SHA512": P.SHA512}[a["algorithm"]]
            p.digits = {6: P.SIX, 8: P.EIGHT}[a["digits"]]
            if a["type"] == "hotp":
                p.type = P.HOTP
                p.counter = a["counter"]
            else:
                p.type = P.TOTP
        data = base64.b64encode(payload.SerializeToString()).decode()
        lines.append("otpauth-migration://offline?data=" + urllib.parse.quote(data, safe=""))
    return lines, chunks


# ------------------------------------------------------------------------------- Aegis


def aegis_content(accts):
    groups = {}
    entries = []
    for i, a in enumerate(accts):
        info = {"secret": a["secret"], "algo": a["algorithm"], "digits": a["digits"]}
        if a["type"] == "hotp":
            info["counter"] = a["counter"]
        else:
            info["period"] = a["period"]
        tag = "Work" if i % 2 == 0 else "Home"
        gid = groups.setdefault(tag, f"6a1f0000-0000-4000-8000-{len(groups):012d}")
        entries.append({
            "type": a["type"], "uuid": f"0b1e0000-0000-4000-8000-{i:012d}",
            "name": a["name"], "issuer": a["issuer"], "note": "", "favorite": False,
            "icon": None, "info": info, "groups": [gid],
        })
    return {"version": 3, "entries": entries,
            "groups": [{"uuid": u, "name": n} for n, u in groups.items()]}


def aegis_encrypt(content, password):
    """docs/vault.md: scrypt(N=2^15, r=8, p=1) wraps a random 256-bit master key with
    AES-256-GCM; the master key encrypts the content JSON (AES-256-GCM, Base64 `db`)."""
    master = AESGCM.generate_key(bit_length=256)
    salt = os.urandom(32)
    kek = Scrypt(salt=salt, length=32, n=2 ** 15, r=8, p=1).derive(password.encode())
    key_nonce = os.urandom(12)
    wrapped = AESGCM(kek).encrypt(key_nonce, master, None)
    db_nonce = os.urandom(12)
    sealed = AESGCM(master).encrypt(db_nonce, json.dumps(content).encode(), None)
    return {
        "version": 1,
        "header": {
            "slots": [{
                "type": 1, "uuid": "5107a000-0000-4000-8000-000000000001",
                "key": wrapped[:-16].hex(),
                "key_params": {"nonce": key_nonce.hex(), "tag": wrapped[-16:].hex()},
                "n": 2 ** 15, "r": 8, "p": 1, "salt": salt.hex(),
                "repaired": True, "is_backup": False,
            }],
            "params": {"nonce": db_nonce.hex(), "tag": sealed[-16:].hex()},
        },
        "db": base64.b64encode(sealed[:-16]).decode(),
    }


def aegis_decrypt(vault, password):
    slots = [s for s in vault["header"]["slots"] if s["type"] == 1]
    for s in slots:
        kek = Scrypt(salt=bytes.fromhex(s["salt"]), length=32, n=s["n"], r=s["r"],
                     p=s["p"]).derive(password.encode())
        try:
            master = AESGCM(kek).decrypt(bytes.fromhex(s["key_params"]["nonce"]),
                                         bytes.fromhex(s["key"] + s["key_params"]["tag"]), None)
            break
        except cryptography.exceptions.InvalidTag:
            continue
    else:
        die("no password slot opens with this password")
    params = vault["header"]["params"]
    db = base64.b64decode(vault["db"]) + bytes.fromhex(params["tag"])
    return json.loads(AESGCM(master).decrypt(bytes.fromhex(params["nonce"]), db, None))


# ------------------------------------------------------------------------------- andOTP


def andotp_entries(accts):
    out = []
    for a in accts:
        e = {"secret": a["secret"], "issuer": a["issuer"], "label": a["name"],
             "digits": a["digits"], "type": a["type"].upper(), "algorithm": a["algorithm"],
             "thumbnail": "Default", "last_used": 0, "used_frequency": 0, "tags": []}
        if a["type"] == "hotp":
            e["counter"] = a["counter"]
        else:
            e["period"] = a["period"]
        out.append(e)
    return out


def andotp_encrypt(plain, password, iterations=140000):
    """iterations (u32 big-endian) ‖ salt (12) ‖ nonce (12) ‖ AES-256-GCM(ciphertext ‖ tag),
    key = PBKDF2-HMAC-SHA1(password, salt, iterations, 256 bits)."""
    salt = os.urandom(12)
    key = PBKDF2HMAC(algorithm=hashes.SHA1(), length=32, salt=salt,
                     iterations=iterations).derive(password.encode())
    nonce = os.urandom(12)
    return iterations.to_bytes(4, "big") + salt + nonce + AESGCM(key).encrypt(nonce, plain, None)


# ------------------------------------------------------------------------------- 2FAS

TWOFAS_REFERENCE = (  # BackupContent.Reference in the 2FAS Android app: a public marker
    "tRViSsLKzd86Hprh4ceC2OP7xazn4rrt4xhfEUbOjxLX8Rc3mkISXE0lWbmnWfggogbBJhtYgpK6fMl1D6mtsy92R3Hk"
    "dGfwuXbzLebqVFJsR7IZ2w58t938iymwG4824igYy1wi6n2WDpO1Q1P69zwJGs2F5a1qP4MyIiDSD7NCV2OvidXQCBnD"
    "lGfmz0f1BQySRkkt4ryiJeCjD2o4QsveJ9uDBUn8ELyOrESv5R5DMDkD4iAF8TXU7KyoJujd")


def twofas_services(accts):
    out = []
    for i, a in enumerate(accts):
        otp = {"label": f"{a['issuer']}:{a['name']}", "account": a["name"],
               "issuer": a["issuer"], "digits": a["digits"], "algorithm": a["algorithm"],
               "tokenType": a["type"].upper(), "source": "Manual"}
        if a["type"] == "hotp":
            otp["counter"] = a["counter"]
        else:
            otp["period"] = a["period"]
        out.append({"name": a["issuer"], "secret": a["secret"], "updatedAt": 1700000000000 + i,
                    "otp": otp, "order": {"position": i},
                    "icon": {"selected": "Label",
                             "label": {"text": (a["issuer"] or a["name"])[:2].upper(),
                                       "backgroundColor": "Orange"}}})
    return out


def twofas_file(accts, password):
    services = twofas_services(accts)
    f = {"services": services, "groups": [], "updatedAt": 1700000000000, "schemaVersion": 4,
         "appVersionCode": 5000009, "appVersionName": "5.1.0", "appOrigin": "android"}
    if password is None:
        return f
    salt = os.urandom(256)
    key = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt,
                     iterations=10000).derive(password.encode())

    def seal(plain):
        iv = os.urandom(12)
        ct = AESGCM(key).encrypt(iv, plain, None)
        return ":".join(base64.b64encode(x).decode() for x in (ct, salt, iv))

    f["servicesEncrypted"] = seal(json.dumps(services).encode())
    f["reference"] = seal(TWOFAS_REFERENCE.encode())
    f["services"] = []
    return f


# ------------------------------------------------------------------------------- Ente


def ente_encrypt(plain, password, opslimit=2, memlimit=2 * 1024 * 1024):
    """Ente's encrypted export: libsodium crypto_pwhash (Argon2id) key, one FINAL message of a
    crypto_secretstream_xchacha20poly1305 stream whose header is `encryptionNonce`."""
    salt = os.urandom(16)
    key = nacl.pwhash.argon2id.kdf(32, password.encode(), salt, opslimit=opslimit,
                                   memlimit=memlimit)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, key)
    ct = sodium.crypto_secretstream_xchacha20poly1305_push(
        state, plain, None, sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL)
    return {"version": 1,
            "kdfParams": {"memLimit": memlimit, "opsLimit": opslimit,
                          "salt": base64.b64encode(salt).decode()},
            "encryptedData": base64.b64encode(ct).decode(),
            "encryptionNonce": base64.b64encode(header).decode()}


# ------------------------------------------------------------------------------- main


def versions():
    protoc = subprocess.run(["protoc", "--version"], capture_output=True, text=True).stdout
    return {
        "python": sys.version.split()[0],
        "cryptography": cryptography.__version__,
        "PyNaCl": nacl.__version__,
        "libsodium": sodium.sodium_version_string() if hasattr(sodium, "sodium_version_string")
        else "(bundled with PyNaCl)",
        "pyotp": getattr(pyotp, "__version__", None) or pkg_version("pyotp"),
        "protobuf": google.protobuf.__version__,
        "protoc": protoc.strip(),
    }


def pkg_version(name):
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:  # noqa: BLE001
        return "unknown"


def write(outdir):
    os.makedirs(outdir, exist_ok=True)
    accts = accounts()
    manifest = []

    def put(name, data, fmt, idx, password=None):
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(os.path.join(outdir, name), mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
        manifest.append({"file": name, "format": fmt, "password": password, "accounts": idx})

    uris = uri_accounts(accts)
    otpauth_text = "".join(pyotp_uri(accts[i]) + "\n" for i in uris)
    put("pyotp.txt", otpauth_text, "otpauth", uris)

    gidx = google_accounts(accts)
    lines, chunks = google_lines(accts, gidx, 2)
    # The reader returns batches in order, each in payload order.
    put("google-migration.txt", "".join(l + "\n" for l in lines), "google-migration",
        [i for c in chunks for i in c])

    all_idx = list(range(len(accts)))
    put("aegis-encrypted.json", json.dumps(aegis_encrypt(aegis_content(accts), PASSWORD), indent=2),
        "aegis", all_idx, PASSWORD)
    put("andotp-encrypted.bin", andotp_encrypt(json.dumps(andotp_entries(accts)).encode(), PASSWORD),
        "andotp", all_idx, PASSWORD)
    put("2fas-encrypted.2fas", json.dumps(twofas_file(accts, PASSWORD)), "2fas", all_idx, PASSWORD)
    put("ente-encrypted.json", json.dumps(ente_encrypt(otpauth_text.encode(), PASSWORD), indent=2),
        "ente", uris, PASSWORD)

    with open(os.path.join(outdir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "generate.py", "versions": versions(), "fixtures": manifest}, f,
                  indent=2, ensure_ascii=False)
        f.write("\n")


# ---- readers for mamori's exports: print entries in accounts.json's shape


def norm(issuer, name, secret_raw, kind, algorithm, digits, period=None, counter=None):
    e = {"issuer": issuer or "", "name": name, "secret": b32(secret_raw), "type": kind,
         "algorithm": algorithm.upper(), "digits": digits}
    if kind == "hotp":
        e["counter"] = counter
    else:
        e["period"] = period
    return e


def read_aegis(path, password):
    with open(path, encoding="utf-8") as f:
        content = aegis_decrypt(json.load(f), password)
    out = []
    for e in content["entries"]:
        i = e["info"]
        s = i["secret"]
        out.append(norm(e["issuer"], e["name"], base64.b32decode(s + "=" * (-len(s) % 8)),
                        e["type"], i["algo"], i["digits"], i.get("period"), i.get("counter")))
    return out


def read_google(path):
    P = migration_module().MigrationPayload
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            q = urllib.parse.urlparse(line)
            data = urllib.parse.parse_qs(q.query)["data"][0]
            payload = P.FromString(base64.b64decode(data))
            for p in payload.otp_parameters:
                kind = {P.HOTP: "hotp", P.TOTP: "totp"}[p.type]
                algo = {P.SHA1: "SHA1", P.SHA256: "SHA256", P.SHA512: "SHA512"}[p.algorithm]
                digits = {P.SIX: 6, P.EIGHT: 8}[p.digits]
                out.append(norm(p.issuer, p.name, p.secret, kind, algo, digits,
                                30 if kind == "totp" else None, p.counter))
    return out


def read_otpauth(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            otp = pyotp.parse_uri(line)
            kind = "hotp" if isinstance(otp, pyotp.HOTP) else "totp"
            algo = otp.digest().name.upper()
            out.append(norm(otp.issuer, otp.name, otp.byte_secret(), kind, algo, otp.digits,
                            getattr(otp, "interval", None), getattr(otp, "initial_count", None)))
    return out


def main(argv):
    if len(argv) == 2 and argv[0] == "write":
        write(argv[1])
    elif len(argv) == 3 and argv[0] == "read-aegis":
        print(json.dumps(read_aegis(argv[1], argv[2]), ensure_ascii=False))
    elif len(argv) == 2 and argv[0] == "read-google":
        print(json.dumps(read_google(argv[1]), ensure_ascii=False))
    elif len(argv) == 2 and argv[0] == "read-otpauth":
        print(json.dumps(read_otpauth(argv[1]), ensure_ascii=False))
    else:
        die(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
