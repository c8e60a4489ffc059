// Secrets out of text that may be shown or logged: the given values, and
// anything shaped like a Google access token, refresh token or client secret.
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join('[redacted]');
  return out
    .replace(/ya29\.[\w.-]+/g, '[redacted]')
    .replace(/1\/\/[\w.-]{8,}/g, '[redacted]')
    .replace(/GOCSPX-[\w-]+/g, '[redacted]');
}
