CREATE TABLE `signing_keys` (
	`kid` text PRIMARY KEY NOT NULL,
	`alg` text NOT NULL,
	`generation` integer NOT NULL,
	`public_jwk` text NOT NULL,
	`private_jwk_encrypted` text NOT NULL,
	`created_at` integer NOT NULL,
	`signs_from` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `signing_keys_generation_idx` ON `signing_keys` (`alg`,`generation`);