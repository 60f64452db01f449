"""The extended-client wire format as literal vectors: pointer bodies and Java-marked receipt handles."""

import pytest

from qfan._wire._pointer import PayloadLocation, parse_pointer, pointer_body, split_receipt_handle

LOCATION = PayloadLocation("my-bucket", "a-b/c-d-e")


@pytest.mark.parametrize(
    "body",
    [
        '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"my-bucket","s3Key":"a-b/c-d-e"}]',
        '["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"my-bucket","s3Key":"a-b/c-d-e"}]',
        '["software.amazon.payloadoffloading.PayloadS3Pointer", '
        '{"s3BucketName": "my-bucket", "s3Key": "a-b/c-d-e"}]',
        ' [ "com.amazon.sqs.javamessaging.MessageS3Pointer" ,\n'
        ' {"s3Key":"a-b/c-d-e","s3BucketName":"my-bucket"} ] ',
    ],
)
def test_both_class_names_compact_or_spaced(body: str) -> None:
    assert parse_pointer(body) == LOCATION


def test_qfan_writes_the_compact_java_form() -> None:
    assert pointer_body(LOCATION) == (
        '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"my-bucket","s3Key":"a-b/c-d-e"}]'
    )


@pytest.mark.parametrize(
    "body",
    [
        "",
        "plain text",
        "{}",
        '["software.amazon.payloadoffloading.PayloadS3Pointer"]',
        '["org.example.Pointer",{"s3BucketName":"b","s3Key":"k"}]',
        '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b"}]',
        '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":""}]',
        '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":7,"s3Key":"k"}]',
    ],
)
def test_malformed_pointers_are_rejected(body: str) -> None:
    with pytest.raises(ValueError, match="pointer"):
        parse_pointer(body)


@pytest.mark.parametrize(
    "original",
    [
        "AQEBzbVv-NmQ==",
        "2f6a-44c1-9d1e-0b7c-d4e5f6a7b8c9",  # an emulator's handle full of '-'
        "-leading-and-trailing-",
        "x-..s3Key..-y",  # even the key marker inside the original handle
    ],
)
def test_java_receipt_handles_are_stripped_by_position(original: str) -> None:
    marked = f"-..s3BucketName..-my-bucket-..s3BucketName..--..s3Key..-a-b/c-d-e-..s3Key..-{original}"
    assert split_receipt_handle(marked) == (original, LOCATION)


@pytest.mark.parametrize(
    "handle",
    [
        "AQEB-plain-handle",
        "-..s3BucketName..-unterminated",
        "-..s3BucketName..-b-..s3BucketName..-no-key-marker",
        "-..s3BucketName..-b-..s3BucketName..--..s3Key..-k-..s3Key..-",  # nothing left of the original
    ],
)
def test_other_handles_pass_through_unchanged(handle: str) -> None:
    assert split_receipt_handle(handle) == (handle, None)
