"""Micro-benchmark: the three ways the lean transport could SigV4-sign a SendMessageBatch request.

    python -m benchmarks.signers [--rounds 20000]

- ``botocore``: botocore's own ``SigV4Auth`` fed an ``AWSRequest`` built for the call;
- ``awscrt``: AWS's CRT signer (``awscrt.auth.aws_sign_request``), when ``awscrt`` is importable;
- ``direct``: qfan's ``SigV4Signer`` (cached signing key).

Each prints microseconds per signature (CPU time of this process) and whether its headers equal botocore's.
"""

from __future__ import annotations

import argparse
import datetime
import io
import time
from collections.abc import Callable, Sequence

from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from qfan._transport._sigv4 import SigV4Signer, canonical_path, host_of

URL = "https://sqs.us-east-1.amazonaws.com/"
REGION = "us-east-1"
HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "AmazonSQS.SendMessageBatch",
    "x-amzn-query-mode": "true",
}
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
BODY = (
    b'{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/bench","Entries":['
    + b",".join(b'{"Id":"%d","MessageBody":"%s"}' % (i, b"x" * 200) for i in range(10))
    + b"]}"
)
CLOCK = datetime.datetime(2026, 11, 27, 1, 2, 3, tzinfo=datetime.UTC)
Signer = Callable[[], dict[str, str]]


def botocore_signer() -> Signer:
    sigv4 = auth.SigV4Auth(CREDENTIALS, "sqs", REGION)
    auth.get_current_datetime = lambda: CLOCK.replace(tzinfo=None)  # type: ignore[attr-defined]

    def sign() -> dict[str, str]:
        request = AWSRequest(method="POST", url=URL, headers=dict(HEADERS), data=BODY)
        sigv4.add_auth(request)
        return {k: request.headers[k] for k in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")}

    return sign


def crt_signer() -> Signer | None:
    try:
        from awscrt import auth as crt_auth
        from awscrt import http as crt_http
    except ImportError:
        return None
    provider = crt_auth.AwsCredentialsProvider.new_static(
        CREDENTIALS.access_key, CREDENTIALS.secret_key, CREDENTIALS.token
    )
    config = crt_auth.AwsSigningConfig(
        algorithm=crt_auth.AwsSigningAlgorithm.V4,
        signature_type=crt_auth.AwsSignatureType.HTTP_REQUEST_HEADERS,
        credentials_provider=provider,
        region=REGION,
        service="sqs",
        date=CLOCK,
        should_normalize_uri_path=True,
    )

    def sign() -> dict[str, str]:
        headers = crt_http.HttpHeaders([("host", host_of(URL)), *HEADERS.items()])
        request = crt_http.HttpRequest("POST", "/", headers, io.BytesIO(BODY))
        crt_auth.aws_sign_request(request, config).result()
        names = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")
        return {name: value for name in names if (value := request.headers.get(name)) is not None}

    return sign


def direct_signer() -> Signer:
    signer = SigV4Signer("sqs", REGION)
    path = canonical_path(URL)
    to_sign = {k.lower(): v for k, v in HEADERS.items()} | {"host": host_of(URL)}

    def sign() -> dict[str, str]:
        return signer.sign(
            path=path,
            headers=to_sign,
            body=BODY,
            access_key=CREDENTIALS.access_key,
            secret_key=CREDENTIALS.secret_key,
            token=CREDENTIALS.token,
            now=CLOCK,
        )

    return sign


def measure(sign: Signer, rounds: int) -> float:
    """Microseconds of process CPU per signature."""
    for _ in range(min(rounds, 500)):
        sign()
    start = time.process_time()
    for _ in range(rounds):
        sign()
    return (time.process_time() - start) / rounds * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.signers", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args(argv)
    reference = botocore_signer()()
    candidates: dict[str, Signer | None] = {
        "botocore SigV4Auth": botocore_signer(),
        "awscrt aws_sign_request": crt_signer(),
        "direct SigV4Signer": direct_signer(),
    }
    print(f"body {len(BODY)} bytes, {args.rounds} signatures each")
    for name, sign in candidates.items():
        if sign is None:
            print(f"{name:26} not installed")
            continue
        same = sign() == reference
        print(f"{name:26} {measure(sign, args.rounds):7.1f} µs/signature  equal to botocore: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
