#!/usr/bin/python3
"""Writes the python-pskc-*.xml fixtures with an independent PSKC implementation
(Debian's python3-pskc 1.2, `apt-get install python3-pskc`), so that mamori-pskc is tested
against files it did not write itself. The tests do not run this script; it documents how the
committed fixtures were made. Keys, passwords and salts are fixed so the output is stable
apart from the random IVs."""

import os
import sys

from pskc import PSKC

HOTP = 'urn:ietf:params:xml:ns:keyprov:pskc:hotp'
TOTP = 'urn:ietf:params:xml:ns:keyprov:pskc#totp'
SEED20 = b'12345678901234567890'
SEED32 = b'12345678901234567890123456789012'


def tokens(pskc):
    pskc.add_key(id='k1', serial='PY-H-0001', manufacturer='Interop Vendor', model='H1',
                 issuer='Interop', algorithm=HOTP, secret=SEED20, counter=7,
                 response_length=6, response_encoding='DECIMAL')
    pskc.add_key(id='k2', serial='PY-T-0002', manufacturer='Interop Vendor', model='T60',
                 algorithm=TOTP, secret=SEED20, time_offset=0, time_interval=60,
                 time_drift=-2, response_length=8, response_encoding='DECIMAL')
    pskc.add_key(id='k3', serial='PY-T-0003', manufacturer='Interop Vendor',
                 algorithm=TOTP, algorithm_suite='HMAC-SHA256', secret=SEED32,
                 time_interval=30, response_length=8, response_encoding='DECIMAL')


def main(outdir):
    plain = PSKC()
    tokens(plain)
    plain.write(os.path.join(outdir, 'python-pskc-plain.xml'))

    psk = PSKC()
    tokens(psk)
    psk.encryption.setup_preshared_key(
        key=bytes.fromhex('000102030405060708090a0b0c0d0e0f'), key_name='Interop PSK',
        algorithm='aes128-cbc', fields=['secret', 'counter', 'time_offset', 'time_interval'])
    psk.write(os.path.join(outdir, 'python-pskc-psk-aes128.xml'))

    psk256 = PSKC()
    tokens(psk256)
    psk256.encryption.setup_preshared_key(
        key=bytes.fromhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'),
        algorithm='aes256-cbc')
    psk256.write(os.path.join(outdir, 'python-pskc-psk-aes256.xml'))

    pw = PSKC()
    tokens(pw)
    pw.encryption.setup_pbkdf2('interop password', salt=b'mamori-interop!!', iterations=1000,
                               key_length=16)
    pw.write(os.path.join(outdir, 'python-pskc-pbkdf2.xml'))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else '.')
