-- CoffeeBuddy's database roles and grants, created by the install rather
-- than assumed (docs/adr/0015-secrets-and-tls.md).
--
-- Run it as the role that runs the migrations (the database owner, which
-- needs CREATEROLE), after the migrations, on every install and upgrade:
--
--   psql -v ON_ERROR_STOP=1 -X -f deploy/postgres/roles.sql "$OWNER_URL"
--
-- It is idempotent: a second run changes nothing, and a run puts back any
-- attribute or grant someone changed by hand. It sets no passwords: Vault's
-- database secrets engine owns them (static roles rotated every 90 days,
-- deploy/vault/database/), logging in as coffeebuddy_vault.
--
--   coffeebuddy_app       the event functions: read and write the tables
--                         they use; the audit trail only appended to
--   coffeebuddy_readonly  slack-ingress: SELECT only, not the audit trail
--   coffeebuddy_audit     audit-api: SELECT and INSERT on audit_logs only
--                         (docs/adr/0009-audit-api.md)
--   coffeebuddy_vault     Vault: sets the three roles' passwords, nothing else
--
-- Tables later migrations create get the same grants through default
-- privileges (the ALTER DEFAULT PRIVILEGES below apply to objects created by
-- the role running this script, hence: the migrations' role).
--
-- Plain SQL (no psql meta-commands), so tests can also apply it over pgx.

-- Roles: created when missing, attributes re-asserted every run.
DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['coffeebuddy_app', 'coffeebuddy_readonly', 'coffeebuddy_audit', 'coffeebuddy_vault'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I', r);
    END IF;
  END LOOP;
END
$$;

-- NOINHERIT: a role acts only with its own grants, whatever it is made a
-- member of later.
ALTER ROLE coffeebuddy_app      LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE coffeebuddy_readonly LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE coffeebuddy_audit    LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- CREATEROLE is what lets Vault set another role's password (PostgreSQL 16
-- and later also ask for ADMIN OPTION on that role, granted below).
ALTER ROLE coffeebuddy_vault    LOGIN NOINHERIT NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS;

-- Even a mistaken write through the read-only role's own session fails.
ALTER ROLE coffeebuddy_readonly SET default_transaction_read_only = on;

DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 160000 THEN
    -- ADMIN to change the password; no INHERIT and no SET, so Vault's
    -- login never acts with the roles' table privileges.
    EXECUTE 'GRANT coffeebuddy_app, coffeebuddy_readonly, coffeebuddy_audit TO coffeebuddy_vault WITH ADMIN TRUE, INHERIT FALSE, SET FALSE';
  END IF;
END
$$;

-- This database only, and only these roles (besides its owner).
DO $$
BEGIN
  EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO coffeebuddy_app, coffeebuddy_readonly, coffeebuddy_audit, coffeebuddy_vault', current_database());
END
$$;

-- Only the migrations' role creates objects (the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO coffeebuddy_app, coffeebuddy_readonly, coffeebuddy_audit;

-- coffeebuddy_app: every table the migrations make, but the audit trail is
-- append-only and the migrations' own bookkeeping is not the app's.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO coffeebuddy_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO coffeebuddy_app;
REVOKE UPDATE, DELETE, TRUNCATE ON TABLE audit_logs FROM coffeebuddy_app;
REVOKE ALL ON TABLE schema_migrations FROM coffeebuddy_app;

-- coffeebuddy_readonly: reads what slack-ingress answers Slack with; not
-- the audit trail (compliance reads it through audit-api).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO coffeebuddy_readonly;
REVOKE ALL ON TABLE audit_logs, schema_migrations FROM coffeebuddy_readonly;

-- coffeebuddy_audit: exactly the grants of ADR 0009.
GRANT SELECT, INSERT ON TABLE audit_logs TO coffeebuddy_audit;

-- Tables and sequences later migrations create.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO coffeebuddy_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO coffeebuddy_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO coffeebuddy_readonly;
