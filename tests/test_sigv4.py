"""The lean transport's SigV4 signer produces exactly botocore's headers for the same request and clock."""

from __future__ import annotations

import datetime

import pytest
from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from qfan._transport._sigv4 import SigV4Signer, canonical_path, host_of

CLOCK = datetime.datetime(2026, 11, 27, 1, 2, 3, tzinfo=datetime.UTC)


def botocore_headers(
    url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str
) -> dict[str, str]:
    """What botocore's own ``SigV4Auth`` adds to the request, at ``CLOCK``."""
    request = AWSRequest(method="POST", url=url, headers=dict(headers), data=body)
    signer = auth.SigV4Auth(credentials, "sqs", region)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "get_current_datetime", lambda: CLOCK.replace(tzinfo=None))
        signer.add_auth(request)
    names = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
    return {name: request.headers[name] for name in names if name in request.headers}


def lean_headers(
    url: str, headers: dict[str, str], body: bytes, credentials: Credentials, region: str
) -> dict[str, str]:
    signer = SigV4Signer("sqs", region)
    to_sign = {name.lower(): value for name, value in headers.items()}
    to_sign["host"] = host_of(url)
    return signer.sign(
        path=canonical_path(url),
        headers=to_sign,
        body=body,
        access_key=credentials.access_key,
        secret_key=credentials.secret_key,
        token=credentials.token,
        now=CLOCK,
    )


SQS_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AmazonSQS.SendMessageBatch",
    "x-amzn-query-mode": "true",
}


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDOUR+session/token=="])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/jobs","Entries":[]}',
        '{"MessageBody":"naïve café — 東京 🚀"}'.encode(),
        bytes(range(256)),
    ],
    ids=["empty", "ascii", "non-ascii", "binary"],
)
@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://sqs.us-east-1.amazonaws.com", "us-east-1"),
        ("https://sqs.eu-west-3.amazonaws.com:443/", "eu-west-3"),
        ("http://127.0.0.1:4566", "us-east-1"),
        ("http://LocalHost:80/sqs/./a/../path with space~", "ap-southeast-2"),
        ("https://sqs.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("http://[::1]:9324", "us-east-1"),
    ],
)
def test_signature_matches_botocore_byte_for_byte(
    url: str, region: str, body: bytes, token: str | None
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    expected = botocore_headers(url, SQS_HEADERS, body, credentials, region)
    assert lean_headers(url, SQS_HEADERS, body, credentials, region) == expected
    assert ("X-Amz-Security-Token" in expected) == (token is not None)


def test_cached_signing_key_follows_the_secret_and_the_day() -> None:
    """A rotated secret (refreshed credentials) or a new UTC day must not reuse the cached signing key."""
    url, region, body = "https://sqs.us-east-1.amazonaws.com", "us-east-1", b"{}"
    signer = SigV4Signer("sqs", region)
    for secret, clock in [
        ("secret-one", CLOCK),
        ("secret-two", CLOCK),
        ("secret-two", CLOCK + datetime.timedelta(days=1)),
    ]:
        credentials = Credentials("AKID", secret, "token")
        headers = {name.lower(): value for name, value in SQS_HEADERS.items()} | {"host": host_of(url)}
        signed = signer.sign(
            path="/",
            headers=headers,
            body=body,
            access_key="AKID",
            secret_key=secret,
            token="token",
            now=clock,
        )
        request = AWSRequest(method="POST", url=url, headers=dict(SQS_HEADERS), data=body)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(auth, "get_current_datetime", lambda c=clock: c.replace(tzinfo=None))
            auth.SigV4Auth(credentials, "sqs", region).add_auth(request)
        assert signed["Authorization"] == request.headers["Authorization"]


# -- S3 (the lean offload path): PUT/GET/DELETE, path-style, S3SigV4Auth's payload rules -------------------


def botocore_s3_headers(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    # As botocore's flexible checksums set it when a CRC32 header goes with the request.
    request.context["checksum"] = {"request_algorithm": {"in": "header", "name": "x-amz-checksum-crc32"}}
    request.context["has_streaming_input"] = method == "PUT"  # PutObject's body is a streaming blob
    signer = auth.S3SigV4Auth(Credentials("AKIDEXAMPLE", "secret/key+value"), "s3", "eu-west-1")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth, "get_current_datetime", lambda: CLOCK.replace(tzinfo=None))
        signer.add_auth(request)
    names = ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256")
    return {name: request.headers[name] for name in names}


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize(
    ("method", "body", "content_type"),
    [
        ("PUT", b'{"pixels": "..."}' * 1000, "application/json"),
        ("PUT", b"\x00\xff", None),
        ("GET", b"", None),
    ],
)
@pytest.mark.parametrize("key", ["payloads/4f1c-uuid", "scans/page 1/ä+é=~.json"])
def test_s3_requests_sign_as_botocores_s3_signer(
    scheme: str, method: str, body: bytes, content_type: str | None, key: str
) -> None:
    import hashlib
    from urllib.parse import quote

    from qfan._transport._s3_rest import UNSIGNED_PAYLOAD, crc32_header

    path = f"/bucket-1/{quote(key, safe='/~')}"
    url = f"{scheme}://s3.eu-west-1.amazonaws.com{path}"
    unsigned = scheme == "https" and method == "PUT"
    payload_hash = UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body).hexdigest()
    headers = {"x-amz-content-sha256": payload_hash}
    if unsigned:
        headers["x-amz-checksum-crc32"] = crc32_header(body)
    if content_type is not None:
        headers["content-type"] = content_type
    theirs = botocore_s3_headers(method, url, headers, body)
    ours = SigV4Signer("s3", "eu-west-1").sign(
        path=path,
        headers={"host": host_of(url), **headers},
        body=body,
        access_key="AKIDEXAMPLE",
        secret_key="secret/key+value",
        token=None,
        now=CLOCK,
        method=method,
        payload_hash=payload_hash,
    )
    assert theirs["X-Amz-Content-SHA256"] == payload_hash
    assert ours == {"X-Amz-Date": theirs["X-Amz-Date"], "Authorization": theirs["Authorization"]}
