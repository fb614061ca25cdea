ALTER TABLE `oauth_clients` ADD `resources` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `oauth_clients` ADD `serves` text DEFAULT '[]' NOT NULL;