-- Namespaces, users, API tokens (hashes only) and the audit log of admin actions.

CREATE TABLE namespaces (
    name        TEXT NOT NULL PRIMARY KEY,
    created_at  REAL NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE users (
    name          TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    grants        TEXT NOT NULL,   -- core.identity.encode_grants
    created_at    REAL NOT NULL
);

CREATE TABLE tokens (
    token_hash  TEXT NOT NULL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    owner       TEXT NOT NULL,
    grants      TEXT NOT NULL,
    created_at  REAL NOT NULL,
    expires_at  REAL,
    revoked_at  REAL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE INDEX tokens_owner ON tokens (owner, created_at);

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: the log's order
    at        REAL NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    namespace TEXT NOT NULL,
    target    TEXT NOT NULL DEFAULT '',
    detail    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_namespace ON audit (namespace, seq);
