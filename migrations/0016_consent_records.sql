CREATE TABLE `consent_records` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`user_id` text NOT NULL,
	`purpose` text NOT NULL,
	`version` text NOT NULL,
	`granted` integer NOT NULL,
	`source` text NOT NULL,
	`ip` text,
	`user_agent` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `consent_records_user_purpose_idx` ON `consent_records` (`user_id`,`purpose`,`id`);--> statement-breakpoint
-- Append-only: an answer, once recorded, is history (a change is a new row). Deleting stays possible,
-- for the account's deletion (the foreign key's cascade).
CREATE TRIGGER `consent_records_append_only` BEFORE UPDATE ON `consent_records`
BEGIN
	SELECT RAISE(ABORT, 'consent_records is append-only');
END;
--> statement-breakpoint
-- A change of a purpose consent is a webhook event (the outbox trigger of 0013 writes it).
INSERT INTO `webhook_event_types` (`audit_type`, `event_type`) VALUES ('purpose_consent_changed', 'consent.updated');
