-- Namespaces, users, API tokens (hashes only) and the audit log of admin actions.
CREATE TABLE shoal_namespaces (
    name        text PRIMARY KEY,
    created_at  double precision NOT NULL,
    description text NOT NULL DEFAULT ''
);

CREATE TABLE shoal_users (
    name          text PRIMARY KEY,
    password_hash text NOT NULL,
    grants        text NOT NULL,
    created_at    double precision NOT NULL
);

CREATE TABLE shoal_tokens (
    token_hash  text PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    owner       text NOT NULL,
    grants      text NOT NULL,
    created_at  double precision NOT NULL,
    expires_at  double precision,
    revoked_at  double precision,
    description text NOT NULL DEFAULT ''
);
CREATE INDEX shoal_tokens_owner ON shoal_tokens (owner, created_at);

CREATE TABLE shoal_audit (
    seq       bigserial PRIMARY KEY,
    at        double precision NOT NULL,
    actor     text NOT NULL,
    action    text NOT NULL,
    namespace text NOT NULL,
    target    text NOT NULL DEFAULT '',
    detail    text NOT NULL DEFAULT '{}'
);
CREATE INDEX shoal_audit_namespace ON shoal_audit (namespace, seq);
