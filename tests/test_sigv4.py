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
