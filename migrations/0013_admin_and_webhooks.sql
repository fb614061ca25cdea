CREATE TABLE `webhook_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`event_id` integer NOT NULL,
	`endpoint_id` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`last_attempt_at` integer,
	`last_status` integer,
	`last_error` text,
	`next_attempt_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`event_id`) REFERENCES `webhook_events`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `webhook_deliveries_event_endpoint_idx` ON `webhook_deliveries` (`event_id`,`endpoint_id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_endpoint_idx` ON `webhook_deliveries` (`endpoint_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_due_idx` ON `webhook_deliveries` (`status`,`next_attempt_at`);--> statement-breakpoint
CREATE TABLE `webhook_endpoints` (
	`id` text PRIMARY KEY NOT NULL,
	`url` text NOT NULL,
	`description` text,
	`event_types` text NOT NULL,
	`secrets` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`disabled_reason` text,
	`failures_in_a_row` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `webhook_event_types` (
	`audit_type` text PRIMARY KEY NOT NULL,
	`event_type` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `webhook_events` (
	`id` integer PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`user_id` text,
	`user` text,
	`detail` text,
	`created_at` integer NOT NULL,
	`dispatched_at` integer
);
--> statement-breakpoint
CREATE INDEX `webhook_events_waiting_idx` ON `webhook_events` (`dispatched_at`,`id`);--> statement-breakpoint
ALTER TABLE `audit_events` ADD `client_id` text;--> statement-breakpoint
ALTER TABLE `audit_events` ADD `actor` text;--> statement-breakpoint
CREATE INDEX `audit_events_client_idx` ON `audit_events` (`client_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `audit_events_created_idx` ON `audit_events` (`created_at`);--> statement-breakpoint
ALTER TABLE `users` ADD `app_metadata` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `user_metadata` text DEFAULT '{}' NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `blocked_at` integer;--> statement-breakpoint
ALTER TABLE `users` ADD `last_sign_in_at` integer;--> statement-breakpoint
CREATE INDEX `users_created_idx` ON `users` (`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `users_last_sign_in_idx` ON `users` (`last_sign_in_at`,`id`);--> statement-breakpoint
CREATE INDEX `users_tier_idx` ON `users` (`tier`,`created_at`);--> statement-breakpoint
CREATE INDEX `user_roles_role_idx` ON `user_roles` (`role`,`user_id`);--> statement-breakpoint
-- Which audit events become webhook events (src/admin/webhook-events.ts lists the same; a test compares them).
INSERT INTO `webhook_event_types` (`audit_type`, `event_type`) VALUES
	('sign_up', 'user.created'),
	('user_created', 'user.created'),
	('user_updated', 'user.updated'),
	('email_verified', 'user.email_verified'),
	('user_deleted', 'user.deleted'),
	('user_blocked', 'user.blocked'),
	('user_unblocked', 'user.unblocked'),
	('sign_in', 'user.signed_in'),
	('sign_in_locked', 'user.sign_in_failed'),
	('session_revoked', 'session.revoked'),
	('sessions_revoked_all', 'session.revoked'),
	('mfa_enrolled', 'second_factor.added'),
	('passkey_added', 'second_factor.added'),
	('mfa_disabled', 'second_factor.removed'),
	('passkey_removed', 'second_factor.removed'),
	('consent_granted', 'consent.granted'),
	('consent_revoked', 'consent.revoked'),
	('identity_linked', 'identity.linked'),
	('identity_unlinked', 'identity.unlinked');
--> statement-breakpoint
-- The outbox: every audit event that is a webhook event writes one, in the same transaction as the
-- change it records (whatever writes the audit row: a batch, a conditional insert, raw SQL), while any
-- endpoint is enabled. The user as they are at that moment goes with it; a placeholder address
-- (an account without one, src/identity/email.ts) never does.
CREATE TRIGGER `audit_events_to_webhooks` AFTER INSERT ON `audit_events`
WHEN EXISTS (SELECT 1 FROM `webhook_event_types` WHERE `audit_type` = NEW.`type`)
	AND EXISTS (SELECT 1 FROM `webhook_endpoints` WHERE `enabled` = 1)
BEGIN
	INSERT INTO `webhook_events` (`id`, `type`, `user_id`, `user`, `detail`, `created_at`)
	SELECT NEW.`id`, m.`event_type`, NEW.`user_id`,
		(SELECT json_object(
			'id', u.`id`,
			'email', CASE WHEN u.`email` LIKE '%@no-email.invalid' THEN NULL ELSE u.`email` END,
			'email_verified', json(CASE WHEN u.`email_verified_at` IS NULL THEN 'false' ELSE 'true' END),
			'name', u.`name`,
			'tier', u.`tier`,
			'roles', json((SELECT json_group_array(r.`role`) FROM `user_roles` r WHERE r.`user_id` = u.`id`)),
			'blocked', json(CASE WHEN u.`blocked_at` IS NULL THEN 'false' ELSE 'true' END),
			'created_at', u.`created_at`)
		FROM `users` u WHERE u.`id` = NEW.`user_id`),
		NEW.`detail`, NEW.`created_at`
	FROM `webhook_event_types` m WHERE m.`audit_type` = NEW.`type`;
END;
--> statement-breakpoint
-- users.last_sign_in_at follows the sign_in audit event, in its transaction.
CREATE TRIGGER `audit_events_last_sign_in` AFTER INSERT ON `audit_events`
WHEN NEW.`type` = 'sign_in' AND NEW.`user_id` IS NOT NULL
BEGIN
	UPDATE `users` SET `last_sign_in_at` = NEW.`created_at` WHERE `id` = NEW.`user_id`;
END;
--> statement-breakpoint
-- The admin API is an API like any other (RFC 8707 audience urn:gatehouse:admin): a client gets its
-- scopes through a grant (npm run clients -- create … --resource urn:gatehouse:admin=SCOPE,…).
INSERT INTO `api_resources` (`identifier`, `name`, `scopes`, `access_token_ttl`, `access_token_format`, `rate_limit`, `created_at`, `updated_at`) VALUES (
	'urn:gatehouse:admin', 'Gatehouse admin API',
	'[{"name":"admin:users:read","description":"Read users, their sessions and credentials"},{"name":"admin:users:write","description":"Create, change, block and delete users; end their sessions; remove credentials"},{"name":"admin:clients:read","description":"Read OAuth clients"},{"name":"admin:clients:write","description":"Create, change and delete OAuth clients; rotate their secrets"},{"name":"admin:resources:read","description":"Read APIs and their grants"},{"name":"admin:resources:write","description":"Create, change and delete APIs and grants"},{"name":"admin:providers:read","description":"Read upstream identity providers"},{"name":"admin:providers:write","description":"Add, change and remove upstream identity providers"},{"name":"admin:api_keys:read","description":"Read API keys (never their secrets)"},{"name":"admin:api_keys:write","description":"Issue and revoke API keys"},{"name":"admin:keys:read","description":"Read the signing keys (public parts)"},{"name":"admin:keys:write","description":"Rotate the signing keys"},{"name":"admin:audit:read","description":"Read the audit log"},{"name":"admin:webhooks:read","description":"Read webhook endpoints and deliveries"},{"name":"admin:webhooks:write","description":"Add, change and remove webhook endpoints; rotate secrets; replay deliveries"}]',
	300, 'jwt', NULL, unixepoch() * 1000, unixepoch() * 1000
) ON CONFLICT (`identifier`) DO NOTHING;
