"""The two pipelines every message goes through: outbound (prepare, offload, batch, send, verify) and inbound
(verify, unwrap, check the pointer, fetch, Message), their hooks, and the connection they run on."""
