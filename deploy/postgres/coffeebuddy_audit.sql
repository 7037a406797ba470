-- The audit API's database role (docs/adr/0009-audit-api.md): it reads the
-- audit trail and appends the records of its own reads, nothing else. No
-- UPDATE, DELETE or TRUNCATE on audit_logs (the trail it serves stays
-- append-only even if the API is compromised), and no access to any other
-- table. The install creates roles (not the migrations); run this as the
-- database owner after the migrations, then let Vault manage the password
-- (database/static-creds/coffeebuddy-audit). functions/audit-api's role test
-- applies this file and proves each grant and refusal.
CREATE ROLE coffeebuddy_audit LOGIN NOINHERIT;
GRANT USAGE ON SCHEMA public TO coffeebuddy_audit;
GRANT SELECT, INSERT ON TABLE audit_logs TO coffeebuddy_audit;
