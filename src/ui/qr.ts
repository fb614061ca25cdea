import { renderSVG } from 'uqr';

/** A QR code as an SVG data: URI (rendered in the worker; the pages' CSP allows data: images only). */
export function qrDataUri(text: string): string {
  const svg = renderSVG(text, { border: 2, ecc: 'M' });
  return `data:image/svg+xml;base64,${btoa(svg)}`;
}
