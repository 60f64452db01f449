"""Wire formats, pure and without I/O: bodies (codec), message attributes, S3 pointers, SNS envelopes,
and AWS's limits."""
