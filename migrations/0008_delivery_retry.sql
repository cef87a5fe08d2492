-- A delivery that failed for good can be tried again through the API
-- (POST /v1/webhooks/{id}/deliveries/{delivery_id}/retry). Its age, which bounds how long
-- it is retried (FAULTLINE_WEBHOOK_MAX_AGE), counts again from the moment it was retried.
ALTER TABLE alert_outbox ADD COLUMN retried_at timestamptz;
