CREATE TABLE `email_changes` (
	`token_hash` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`user_id` text NOT NULL,
	`binding_hash` text,
	`old_email` text NOT NULL,
	`new_email` text NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `email_changes_user_idx` ON `email_changes` (`user_id`,`kind`);--> statement-breakpoint
CREATE INDEX `email_changes_expiry_idx` ON `email_changes` (`expires_at`);--> statement-breakpoint
ALTER TABLE `users` ADD `profile_attributes` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `deletion_due_at` integer;--> statement-breakpoint
CREATE INDEX `users_deletion_due_idx` ON `users` (`deletion_due_at`);--> statement-breakpoint
-- A confirmed address change, and its undo, are webhook user.updated events (changed: ["email"]).
INSERT INTO `webhook_event_types` (`audit_type`, `event_type`) VALUES ('email_changed', 'user.updated'), ('email_change_undone', 'user.updated');
