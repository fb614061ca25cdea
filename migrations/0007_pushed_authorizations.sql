CREATE TABLE `pushed_authorizations` (
	`id_hash` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`params` text NOT NULL,
	`expires_at` integer NOT NULL,
	`used_at` integer
);
--> statement-breakpoint
CREATE INDEX `pushed_authorizations_expiry_idx` ON `pushed_authorizations` (`expires_at`);--> statement-breakpoint
ALTER TABLE `oauth_clients` ADD `require_par` integer DEFAULT false NOT NULL;