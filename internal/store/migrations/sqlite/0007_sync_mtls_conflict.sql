-- Mutual TLS destinations and the per-destination conflict rule
-- (internal/sync).

-- tls_cert_ref and tls_key_ref are vault: or local: references of the PEM
-- client certificate (chain) and private key the gateway presents when
-- auth is mtls. ca_ref, when set, references the PEM CA bundle the
-- partner's server certificate must chain to (any auth); empty trusts the
-- system roots. on_conflict is what a 409 or 412 answer does: resend
-- (re-read our current state and send once more) or review (dead letter
-- with reason review).
ALTER TABLE sync_destination ADD COLUMN tls_cert_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_destination ADD COLUMN tls_key_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_destination ADD COLUMN ca_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_destination ADD COLUMN on_conflict TEXT NOT NULL DEFAULT 'resend';
