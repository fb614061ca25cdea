ALTER TABLE `email_changes` ADD `requested_sid` text;--> statement-breakpoint
ALTER TABLE `email_tokens` ADD `profile_attributes` text;