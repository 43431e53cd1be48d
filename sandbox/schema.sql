-- The sandbox VaultPAM's database schema; applied at every start, so every statement is idempotent.
--
-- Ids: text with a readable prefix and 16 random hex digits (org_, usr_, res_, safe_, cred_, con_), so a
-- row's kind is obvious in logs, audit details and restore reports. Sessions use a uuid because the id is
-- also the recording's object name. audit_log uses a bigserial: its order is the order things happened.
--
-- created_at / updated_at exist so a restore can count what changed after a backup's timestamp;
-- updated_at is kept current by a trigger rather than trusted to every writer. audit_log is append-only, so
-- its one timestamp is `at`.
-- audit_log.resource_id and sessions.resource_id carry no foreign key on purpose: history outlives the
-- resource it mentions (deleting a resource must not erase who used it).

CREATE OR REPLACE FUNCTION vaultpam_id(prefix text) RETURNS text
  LANGUAGE sql VOLATILE
  AS $$ SELECT prefix || '_' || substr(md5(gen_random_uuid()::text), 1, 16) $$;

CREATE OR REPLACE FUNCTION vaultpam_touch_updated_at() RETURNS trigger
  LANGUAGE plpgsql
  AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;

CREATE TABLE IF NOT EXISTS organisations (
  id          text PRIMARY KEY DEFAULT vaultpam_id('org'),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS users (
  id               text PRIMARY KEY DEFAULT vaultpam_id('usr'),
  organisation_id  text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
  email            text NOT NULL UNIQUE,
  display_name     text NOT NULL,
  role             text NOT NULL DEFAULT 'member' CHECK (role IN ('org-admin', 'admin', 'member', 'auditor')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS users_organisation_id_idx ON users (organisation_id);

CREATE TABLE IF NOT EXISTS resources (
  id               text PRIMARY KEY DEFAULT vaultpam_id('res'),
  organisation_id  text NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
  name             text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('ssh', 'rdp', 'database', 'kubernetes', 'web')),
  address          text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS resources_organisation_id_idx ON resources (organisation_id);
CREATE INDEX IF NOT EXISTS resources_updated_at_idx ON resources (updated_at);

CREATE TABLE IF NOT EXISTS safes (
  id           text PRIMARY KEY DEFAULT vaultpam_id('safe'),
  resource_id  text NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
  name         text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS safes_resource_id_idx ON safes (resource_id);

-- secret is opaque text: the sandbox neither encrypts nor interprets it, and the API never returns it.
CREATE TABLE IF NOT EXISTS credentials (
  id          text PRIMARY KEY DEFAULT vaultpam_id('cred'),
  safe_id     text NOT NULL REFERENCES safes (id) ON DELETE CASCADE,
  username    text NOT NULL,
  secret      text NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  rotated_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS credentials_safe_id_idx ON credentials (safe_id);
CREATE INDEX IF NOT EXISTS credentials_updated_at_idx ON credentials (updated_at);

CREATE TABLE IF NOT EXISTS connectors (
  id          text PRIMARY KEY DEFAULT vaultpam_id('con'),
  name        text NOT NULL UNIQUE,
  kind        text NOT NULL,
  config      jsonb NOT NULL DEFAULT '{}'::jsonb,
  enabled     boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS audit_log (
  id           bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL,
  action       text NOT NULL,
  resource_id  text,
  details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS audit_log_at_idx ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_resource_id_idx ON audit_log (resource_id);

CREATE TABLE IF NOT EXISTS sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  resource_id    text NOT NULL,
  user_id        text REFERENCES users (id) ON DELETE SET NULL,
  started_at     timestamptz NOT NULL DEFAULT now(),
  recording_key  text NOT NULL UNIQUE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sessions_resource_id_idx ON sessions (resource_id);
CREATE INDEX IF NOT EXISTS sessions_started_at_idx ON sessions (started_at);

CREATE OR REPLACE TRIGGER organisations_touch BEFORE UPDATE ON organisations FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER resources_touch BEFORE UPDATE ON resources FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER safes_touch BEFORE UPDATE ON safes FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER credentials_touch BEFORE UPDATE ON credentials FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER connectors_touch BEFORE UPDATE ON connectors FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
CREATE OR REPLACE TRIGGER sessions_touch BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION vaultpam_touch_updated_at();
