"""Verify every envelope of a `.intoto.jsonl` bundle with the reference implementation.

usage: verify_bundle.py PUBLIC_KEY.pem BUNDLE

Each line is checked twice: with securesystemslib's DSSE verifier, and read by in-toto's own
`Metadata.from_dict` (which must see a DSSE Envelope) and checked by its `verify_signature`.
The signed payload is then read by the in-toto-attestation bindings (protobuf's JSON parser,
which refuses unknown fields) and must pass their `Statement.validate()`.
Exit 0 when every envelope verifies, 1 when one does not, 2 on anything else.
"""

import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto.exceptions import SignatureVerificationError
from in_toto.models.metadata import Envelope as InTotoEnvelope
from in_toto.models.metadata import Metadata
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey


def main() -> int:
    key_path, bundle_path = sys.argv[1], sys.argv[2]
    with open(key_path, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()))
    key_dict = dict(key.to_dict(), keyid=key.keyid)
    with open(bundle_path, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    if not lines:
        print("no envelope", file=sys.stderr)
        return 2
    for number, line in enumerate(lines, start=1):
        # from_dict consumes the dict it is given: each reader gets its own.
        try:
            accepted = Envelope.from_dict(json.loads(line)).verify([key], 1)
        except VerificationError as e:
            print(f"line {number}: securesystemslib rejects: {e}")
            return 1
        if key.keyid not in accepted:
            print(f"line {number}: securesystemslib accepted another key: {accepted}")
            return 1
        metadata = Metadata.from_dict(json.loads(line))
        if not isinstance(metadata, InTotoEnvelope):
            print(f"line {number}: in-toto reads a {type(metadata).__name__}")
            return 2
        try:
            metadata.verify_signature(key_dict)
        except SignatureVerificationError as e:
            print(f"line {number}: in-toto rejects: {e}")
            return 1
        try:
            proto = json_format.Parse(metadata.payload, statement_pb2.Statement())
            Statement.copy_from_pb(proto).validate()
        except (json_format.ParseError, ValueError) as e:
            print(f"line {number}: in-toto-attestation rejects the statement: {e}")
            return 1
        statement = json.loads(metadata.payload)
        print(f"line {number}: ok, {statement['predicateType']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
