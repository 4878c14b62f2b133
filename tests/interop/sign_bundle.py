"""Sign in-toto statements into a `.intoto.jsonl` bundle, independently of reprove.

usage: sign_bundle.py PUBLIC_KEY_OUT BUNDLE_OUT STATEMENT.json...

A fresh Ed25519 key from pyca/cryptography signs the DSSE pre-authentication encoding as
securesystemslib computes it; the keyid is securesystemslib's. The public key is written in
PEM SubjectPublicKeyInfo. Each statement file's bytes are the payload, as they are.
"""

import base64
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def main() -> int:
    public_out, bundle_out, statements = sys.argv[1], sys.argv[2], sys.argv[3:]
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    keyid = SSlibKey.from_crypto(public).keyid
    with open(public_out, "wb") as f:
        f.write(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    lines = []
    for path in statements:
        with open(path, "rb") as f:
            payload = f.read()
        pae = Envelope(payload, PAYLOAD_TYPE, {}).pae()
        # The spec's encoding, written out, must agree with the reference one.
        expected = b"DSSEv1 %d %s %d %s" % (
            len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload
        )
        assert pae == expected, (pae, expected)
        envelope = {
            "payloadType": PAYLOAD_TYPE,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [
                {"keyid": keyid, "sig": base64.b64encode(private.sign(pae)).decode()}
            ],
        }
        lines.append(json.dumps(envelope, separators=(",", ":")))
    with open(bundle_out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
