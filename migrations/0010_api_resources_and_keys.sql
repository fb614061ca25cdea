CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`secret_hash` text NOT NULL,
	`name` text NOT NULL,
	`user_id` text,
	`client_id` text,
	`resource` text NOT NULL,
	`scopes` text DEFAULT '[]' NOT NULL,
	`expires_at` integer,
	`last_used_at` integer,
	`revoked_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`client_id`) REFERENCES `oauth_clients`(`client_id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`resource`) REFERENCES `api_resources`(`identifier`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "api_keys_one_owner" CHECK((`user_id` IS NULL) <> (`client_id` IS NULL))
);
--> statement-breakpoint
CREATE INDEX `api_keys_user_idx` ON `api_keys` (`user_id`);--> statement-breakpoint
CREATE INDEX `api_keys_client_idx` ON `api_keys` (`client_id`);--> statement-breakpoint
CREATE TABLE `api_resources` (
	`identifier` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`scopes` text DEFAULT '[]' NOT NULL,
	`access_token_ttl` integer,
	`access_token_format` text DEFAULT 'jwt' NOT NULL,
	`rate_limit` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `client_resources` (
	`client_id` text NOT NULL,
	`resource` text NOT NULL,
	`scopes` text DEFAULT '[]' NOT NULL,
	PRIMARY KEY(`client_id`, `resource`),
	FOREIGN KEY (`client_id`) REFERENCES `oauth_clients`(`client_id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`resource`) REFERENCES `api_resources`(`identifier`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `client_resources_resource_idx` ON `client_resources` (`resource`);--> statement-breakpoint
-- Each resource a client was registered for becomes a registered API (no scopes of its own yet,
-- named by its identifier) that the client may ask tokens for. oauth_clients.resources stays (a
-- worker of the previous version reads it until the new one is deployed); a later migration drops it.
INSERT OR IGNORE INTO `api_resources` (`identifier`, `name`, `scopes`, `access_token_format`, `created_at`, `updated_at`)
  SELECT DISTINCT r.value, r.value, '[]', 'jwt', CAST(unixepoch() AS INTEGER) * 1000, CAST(unixepoch() AS INTEGER) * 1000
  FROM `oauth_clients` c, json_each(c.`resources`) r;--> statement-breakpoint
INSERT OR IGNORE INTO `client_resources` (`client_id`, `resource`, `scopes`)
  SELECT c.`client_id`, r.value, '[]' FROM `oauth_clients` c, json_each(c.`resources`) r;
