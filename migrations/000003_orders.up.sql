BEGIN;

CREATE TABLE orders (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id         uuid        NOT NULL REFERENCES coffee_runs (id) ON DELETE CASCADE,
    user_id        text        NOT NULL,
    drink          text        NOT NULL CHECK (drink IN ('latte', 'espresso', 'cappuccino', 'americano', 'mocha')),
    size           text        NOT NULL CHECK (size IN ('small', 'medium', 'large')),
    customizations text        NOT NULL DEFAULT '' CHECK (char_length(customizations) <= 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE orders IS 'Drink orders placed in a coffee run; one order per user per run (a second order replaces the first).';

CREATE UNIQUE INDEX orders_run_user ON orders (run_id, user_id);
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC);

COMMIT;
