import type { FC } from 'hono/jsx';
import { Layout } from '../ui/layout';

/**
 * The admin API's reference, rendered on the server from the OpenAPI document: no script, no CDN
 * (it works offline in `wrangler dev`), under the pages' strict CSP. Tools that want the machine
 * form read openapi.json next to it.
 */
type Json = Record<string, unknown>;

const pretty = (v: unknown) => JSON.stringify(v, null, 2);

const Operation: FC<{ method: string; path: string; op: Json }> = ({ method, path, op }) => {
  const params = (op.parameters as Json[] | undefined) ?? [];
  const body = (op.requestBody as { content?: Record<string, { schema?: unknown }> } | undefined)?.content?.['application/json']?.schema;
  const responses = Object.entries((op.responses as Record<string, Json>) ?? {});
  return (
    <section id={String(op.operationId)} class="operation">
      <h3>
        <code>{method.toUpperCase()}</code> <code>{path}</code>
      </h3>
      <p>
        {String(op.summary ?? '')}{' '}
        <small>
          (scope <code>{String(op['x-required-scope'])}</code>)
        </small>
      </p>
      {op.description ? <p>{String(op.description)}</p> : null}
      {params.length > 0 && (
        <table>
          <thead>
            <tr>
              <th>parameter</th>
              <th>in</th>
              <th>schema</th>
              <th>meaning</th>
            </tr>
          </thead>
          <tbody>
            {params.map((p) => (
              <tr>
                <td>
                  <code>{String(p.name)}</code>
                  {p.required ? ' (required)' : ''}
                </td>
                <td>{String(p.in)}</td>
                <td>
                  <code>{JSON.stringify(p.schema)}</code>
                </td>
                <td>{String(p.description ?? '')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {body !== undefined && (
        <details>
          <summary>Request body (application/json)</summary>
          <pre>{pretty(body)}</pre>
        </details>
      )}
      {responses.map(([status, r]) => {
        const schema = (r.content as Record<string, { schema?: unknown }> | undefined)?.['application/json']?.schema;
        return schema === undefined ? null : (
          <details>
            <summary>
              {status} {String(r.description ?? '')}
            </summary>
            <pre>{pretty(schema)}</pre>
          </details>
        );
      })}
    </section>
  );
};

export const ReferencePage: FC<{ document: Json }> = ({ document }) => {
  const info = document.info as { title: string; description: string };
  const paths = document.paths as Record<string, Record<string, Json>>;
  const byTag = new Map<string, { method: string; path: string; op: Json }[]>();
  for (const [path, methods] of Object.entries(paths))
    for (const [method, op] of Object.entries(methods)) {
      const tag = (op.tags as string[])[0] ?? 'other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), { method, path, op }]);
    }
  return (
    <Layout title={info.title}>
      <p>{info.description}</p>
      <p>
        Base URL <code>{(document.servers as { url: string }[])[0]!.url}</code> · <a href="openapi.json">openapi.json</a>
      </p>
      <nav aria-label="Operations">
        <ul>
          {[...byTag.entries()].map(([tag, ops]) => (
            <li>
              {tag}:{' '}
              {ops.map((o) => (
                <>
                  <a href={`#${String(o.op.operationId)}`}>{String(o.op.operationId)}</a>{' '}
                </>
              ))}
            </li>
          ))}
        </ul>
      </nav>
      {[...byTag.entries()].map(([tag, ops]) => (
        <section>
          <h2>{tag}</h2>
          {ops.map((o) => (
            <Operation {...o} />
          ))}
        </section>
      ))}
    </Layout>
  );
};
