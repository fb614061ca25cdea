ALTER TABLE `oauth_clients` ADD `require_dpop` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `oauth_clients` ADD `registration_token_hash` text;