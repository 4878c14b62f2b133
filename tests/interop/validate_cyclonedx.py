"""Validate a CycloneDX JSON document with the official schema, as cyclonedx-python-lib ships it.

Usage: validate_cyclonedx.py DOCUMENT.json
Prints `valid` and exits 0, or prints the schema error and exits 1.
"""
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

with open(sys.argv[1], encoding="utf-8") as f:
    text = f.read()
error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
if error is not None:
    print(f"invalid: {error}")
    sys.exit(1)
print("valid")
