-- Issue 17: an index under every purge (src/db/retention.ts) and the hot reads test/db/query-plans.test.ts checks.
-- Numbered 0015: issue 15 may add a 0014 of its own.
CREATE INDEX `credential_failures_updated_idx` ON `credential_failures` (`updated_at`);--> statement-breakpoint
CREATE INDEX `email_sign_ins_expiry_idx` ON `email_sign_ins` (`expires_at`);--> statement-breakpoint
CREATE INDEX `email_tokens_expiry_idx` ON `email_tokens` (`expires_at`);--> statement-breakpoint
CREATE INDEX `sign_in_history_last_seen_idx` ON `sign_in_history` (`last_seen_at`);--> statement-breakpoint
CREATE INDEX `used_client_assertions_expiry_idx` ON `used_client_assertions` (`expires_at`);--> statement-breakpoint
CREATE INDEX `webauthn_challenges_expiry_idx` ON `webauthn_challenges` (`expires_at`);