-- mamori account service, sqlite schema: built-in HTTPS state shared by the nodes of one
-- database (issue #22, docs/server.md "Automatic certificates (ACME)").

-- The ACME account's credentials and the certificate with its private key, each sealed with
-- the server key (XChaCha20-Poly1305 bound to its name), so a database dump alone gives
-- neither key away.
CREATE TABLE tls_state (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The lease of the node that orders a certificate: one node at a time, taken and renewed in
-- one statement, expiring by itself if that node dies mid-order.
CREATE TABLE tls_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_at BIGINT NOT NULL
);
