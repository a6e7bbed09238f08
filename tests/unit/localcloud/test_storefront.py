"""The back office's client (localcloud/storefront.py): every request carries a SigV4 signature for
execute-api over its exact method, URL and body, made with the role's temporary credentials."""

from __future__ import annotations

from botocore.credentials import Credentials

from localcloud.storefront import HttpClient, SignedHttpClient

URL = "http://127.0.0.1:4566/_aws/execute-api/abc123/v1/approvals/o-1"


def signed(body: bytes) -> dict[str, str]:
    client = SignedHttpClient("http://unused", Credentials("ASIAEXAMPLE", "secret", "token-1"), "us-east-1")
    return client.sign("POST", URL, body, {"Content-Type": "application/json"})


def test_the_signature_names_the_key_the_region_and_execute_api():
    headers = signed(b'{"decision":"approve"}')
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/")
    assert "/us-east-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=" in authorization and "Signature=" in authorization
    assert headers["X-Amz-Security-Token"] == "token-1"  # assumed-role credentials
    assert headers["Content-Type"] == "application/json"


def test_the_signature_covers_the_body():
    one, other = signed(b'{"decision":"approve"}'), signed(b'{"decision":"reject"}')
    assert one["Authorization"].split("Signature=")[1] != other["Authorization"].split("Signature=")[1]


def test_the_partner_client_sends_no_signature():
    assert HttpClient("http://unused", headers={"x-api-key": "k"}).sign("GET", URL, None, {"a": "b"}) == {"a": "b"}
