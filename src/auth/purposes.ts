import type { Deps } from '../deps';
import type { RequestMeta } from '../identity/audit';
import {
  checkDecisions,
  consentHistory,
  decisionStatements,
  purposeStates,
  type DecisionSource,
  type PurposeDecision,
  type PurposeState,
} from '../identity/consent-records';
import { failClosed } from '../lib/errors';
import { assertLiveSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';

/** A purpose and the person's answer, as the JSON API shows it. */
export const purposeView = (p: PurposeState) => ({
  id: p.id,
  title: p.title,
  version: p.version,
  required: p.required,
  url: p.url,
  accepted: p.accepted,
  answer: p.answer,
});

/** The signed-in person's purposes (a live session: one revoked elsewhere is refused). */
export async function purposesOf(deps: Deps, session: SessionClaims): Promise<PurposeState[]> {
  await assertLiveSession(deps, session);
  return failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, session.sub));
}

/** The history of answers, newest first, as the JSON API shows it. */
export async function purposeHistory(deps: Deps, session: SessionClaims) {
  await assertLiveSession(deps, session);
  const rows = await failClosed('the database', () => consentHistory(deps.db, session.sub));
  return rows.map((r) => ({ purpose: r.purpose, version: r.version, granted: r.granted, source: r.source, at: r.createdAt, ip: r.ip }));
}

/**
 * The person changes their answers (accepting, or withdrawing — a required purpose withdrawn is
 * asked again at the next sign-in). Each answer must name a declared purpose at the version in
 * force (400 naming it otherwise); answers that change nothing record nothing; each change is one
 * new row and one `purpose_consent_changed` event, all in one batch.
 */
export async function updatePurposes(
  deps: Deps,
  session: SessionClaims,
  decisions: PurposeDecision[],
  meta: RequestMeta,
  source: DecisionSource,
): Promise<PurposeState[]> {
  await assertLiveSession(deps, session);
  return recordPurposeAnswers(deps, session.sub, decisions, { meta, source, actor: null });
}

/**
 * Records answers for one person — theirs (updatePurposes), or given elsewhere and entered by an
 * operator through the admin API (`source: 'admin'`, with the actor). The same rules either way:
 * declared purposes at the versions in force (400 naming the field otherwise), a row and an event
 * only for what changes, all in one batch.
 */
export async function recordPurposeAnswers(
  deps: Deps,
  userId: string,
  decisions: PurposeDecision[],
  w: { meta: RequestMeta; source: DecisionSource; actor: string | null },
): Promise<PurposeState[]> {
  checkDecisions(deps.config.purposes, decisions);
  const before = await failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, userId));
  const writes = decisionStatements(deps.db, userId, before, decisions, { ...w, at: deps.now() });
  if (writes.length > 0)
    await failClosed('the database', async () => {
      await deps.db.batch(writes as [(typeof writes)[number], ...typeof writes]);
    });
  return failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, userId));
}
