/** So many requests per so many seconds, counted per client, per API key or per user. */
export interface RateLimit {
  requests: number;
  /** Seconds. */
  period: number;
}
