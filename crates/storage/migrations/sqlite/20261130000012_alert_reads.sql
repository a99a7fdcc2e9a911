-- The admin's reads of alerts: a tenant's newest (its operators' dashboard) and those about one booking or charge
-- (the booking's page). Without these both walked every alert.
CREATE INDEX alerts_tenant_recent ON alerts (tenant_id, created_at DESC);
CREATE INDEX alerts_tenant_subject ON alerts (tenant_id, subject);
