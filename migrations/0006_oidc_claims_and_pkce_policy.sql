ALTER TABLE `oauth_clients` ADD `require_pkce` integer DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE `oauth_clients` ADD `id_token_claims` integer DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `name` text;--> statement-breakpoint
ALTER TABLE `users` ADD `given_name` text;--> statement-breakpoint
ALTER TABLE `users` ADD `family_name` text;--> statement-breakpoint
ALTER TABLE `users` ADD `middle_name` text;--> statement-breakpoint
ALTER TABLE `users` ADD `nickname` text;--> statement-breakpoint
ALTER TABLE `users` ADD `preferred_username` text;--> statement-breakpoint
ALTER TABLE `users` ADD `profile_url` text;--> statement-breakpoint
ALTER TABLE `users` ADD `picture` text;--> statement-breakpoint
ALTER TABLE `users` ADD `website` text;--> statement-breakpoint
ALTER TABLE `users` ADD `gender` text;--> statement-breakpoint
ALTER TABLE `users` ADD `birthdate` text;--> statement-breakpoint
ALTER TABLE `users` ADD `zoneinfo` text;--> statement-breakpoint
ALTER TABLE `users` ADD `locale` text;--> statement-breakpoint
ALTER TABLE `users` ADD `phone_number` text;--> statement-breakpoint
ALTER TABLE `users` ADD `phone_number_verified_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `address` text;