-- A burst in the quiet period after an alert (the detector mutes its series for a while) is
-- still recorded: it grows its insight and is listed in /v1/spikes with suppressed = true, while
-- no webhook is sent for it.
ALTER TABLE spikes ADD COLUMN suppressed boolean NOT NULL DEFAULT false;
