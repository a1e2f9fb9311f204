# kapgw-gateway: the only policy the gateway process gets (AppRole or
# Kubernetes login). Least privilege: no list, no metadata, no writes to KV,
# no key export, no key configuration. Token renewal and lookup-self come from
# Vault's built-in "default" policy.

# Static secrets (partner EHR and pharmacy credentials, webhook HMAC secrets,
# the database password): read the latest KV v2 data under kapgw/ only.
path "kv/data/kapgw/*" {
  capabilities = ["read"]
}

# Access tokens and prescriptions are signed in Vault with SHA-384; the
# private keys never leave it. Only the sha2-384 path is allowed, so no caller
# can ask for a weaker hash.
path "transit/sign/kapgw-token/sha2-384" {
  capabilities = ["update"]
}

path "transit/sign/kapgw-rx/sha2-384" {
  capabilities = ["update"]
}

# Read the signing keys' descriptions for their public keys (JWKS, kid).
# Transit keys are created non-exportable, so this exposes no private key.
path "transit/keys/kapgw-token" {
  capabilities = ["read"]
}

path "transit/keys/kapgw-rx" {
  capabilities = ["read"]
}

# Envelope encryption of exchanged documents.
path "transit/encrypt/kapgw-exchange" {
  capabilities = ["update"]
}

path "transit/decrypt/kapgw-exchange" {
  capabilities = ["update"]
}
