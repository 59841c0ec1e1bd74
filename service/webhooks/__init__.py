"""Webhooks: job-end notifications written to an outbox in the job's own transaction, sent by
a background sender with retries, signed as the Standard Webhooks specification says, and sent
only to public addresses (or hosts a deployment allows)."""
