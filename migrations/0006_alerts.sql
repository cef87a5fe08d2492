-- Alerts: the outbox of webhook deliveries, written in the same transaction as the insight
-- that causes them, and the health of each endpoint (its circuit breaker).

-- One delivery to one subscription: one message, with one id the receiver can dedupe on,
-- carrying one insight or a digest of several (a burst folds into the delivery still waiting).
CREATE TABLE alert_outbox (
    id               bigserial   PRIMARY KEY,
    delivery_id      uuid        NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    webhook_id       bigint      NOT NULL REFERENCES webhooks ON DELETE CASCADE,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    -- Not sent before this: the digest window and the subscription's cooldown, then the backoff.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- When it was first due: the next message to the subscription waits its cooldown after this.
    scheduled_at     timestamptz NOT NULL DEFAULT now(),
    -- A dispatcher that claimed the row owns it until then (FOR UPDATE SKIP LOCKED + lease).
    locked_until     timestamptz,
    -- The rendered message, fixed when it is first claimed so every retry sends the same body.
    body             text,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX alert_outbox_webhook ON alert_outbox (webhook_id, id DESC);

-- The insights a delivery carries; the throttle key (kind and group) of each.
CREATE TABLE alert_items (
    outbox_id    bigint      NOT NULL REFERENCES alert_outbox ON DELETE CASCADE,
    insight_id   bigint      NOT NULL REFERENCES insights ON DELETE CASCADE,
    webhook_id   bigint      NOT NULL,
    throttle_key text        NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (outbox_id, insight_id)
);
CREATE INDEX alert_items_throttle ON alert_items (webhook_id, throttle_key, added_at DESC);

-- Per subscription: consecutive failures and, when the breaker is open, until when nothing is sent.
CREATE TABLE alert_endpoints (
    webhook_id           bigint      PRIMARY KEY REFERENCES webhooks ON DELETE CASCADE,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    open_until           timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
