BEGIN;

DROP TABLE user_preferences;

COMMIT;
