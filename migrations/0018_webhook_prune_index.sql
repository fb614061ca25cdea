-- Issue 17: the webhook sweep's prune (src/admin/webhook-dispatch.ts) finds old deliveries by created_at
-- (test/db/query-plans.test.ts). Numbered 0018 and chained after 0017 (account deletion and email change).
CREATE INDEX `webhook_deliveries_created_idx` ON `webhook_deliveries` (`created_at`);