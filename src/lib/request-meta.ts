/** Who is acting, as seen at the edge; recorded with sessions and audit events. */
export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
}
