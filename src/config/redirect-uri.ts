// Google's validation rules for OAuth redirect URIs ("Redirect URI validation
// rules" in Google's web-server flow guide). The gateway checks its own
// redirect URI (`<public url>/oauth2callback`) at start, so a URI that Google
// would refuse stops the start with the rule that was broken instead of
// failing later in the browser with redirect_uri_mismatch / invalid_request.
import { isIP } from 'node:net';

/** Null when `uri` follows every rule, else a one-line message naming the broken rule. */
export function checkRedirectUri(uri: string): string | null {
  const shown = JSON.stringify(uri);

  // Character rules first: they look at the raw text, before a URL parser
  // would normalise or strip anything.
  if (/[\x00-\x1f\x7f]/.test(uri)) {
    return `redirect URI ${shown} contains a non-printable character; Google accepts only printable ASCII in redirect URIs`;
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) {
    return `redirect URI ${shown} has invalid percent-encoding; every "%" must be followed by two hex digits`;
  }
  if (/%00|%c0%80/i.test(uri)) {
    return `redirect URI ${shown} contains an encoded NUL character (%00 or %C0%80), which Google refuses`;
  }
  if (uri.includes('*')) {
    return `redirect URI ${shown} contains the wildcard character "*", which Google refuses`;
  }
  if (uri.includes('#')) {
    return `redirect URI ${shown} has a fragment ("#..."); Google refuses redirect URIs with a fragment component`;
  }
  if (/\s/.test(uri)) {
    return `redirect URI ${shown} contains a space; percent-encode it or remove it`;
  }

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  if (!schemeMatch) return `redirect URI ${shown} is not an absolute URI (expected https://host/path)`;
  const afterScheme = uri.slice(schemeMatch[0].length);
  if (hasPathTraversal(afterScheme)) {
    return `redirect URI ${shown} contains a path traversal ("/.." or "\\.." , also percent-encoded), which Google refuses`;
  }

  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return `redirect URI ${shown} is not a valid absolute URI`;
  }
  if (!afterScheme.startsWith('//')) {
    return `redirect URI ${shown} has no host; expected https://host/path`;
  }
  const authority = afterScheme.slice(2).split(/[/?\\]/, 1)[0] ?? '';
  if (authority.includes('@') || url.username || url.password) {
    return `redirect URI ${shown} contains userinfo ("user@" before the host), which Google refuses`;
  }

  const host = url.hostname.toLowerCase();
  const loopback = isLoopback(host);
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'https' && !(scheme === 'http' && loopback)) {
    return loopback
      ? `redirect URI ${shown} must use http or https`
      : `redirect URI ${shown} must use https; plain http is allowed only for localhost and loopback IPs (127.0.0.1, [::1])`;
  }
  if (!host) return `redirect URI ${shown} has no host`;
  if (isIP(host.replace(/^\[|\]$/g, '')) !== 0 && !loopback) {
    return `redirect URI ${shown} uses a raw IP address as host; Google allows IP hosts only for loopback (127.0.0.1, [::1]); use a domain name`;
  }
  return null;
}

/** `/..` or `\..`, where any of the characters may be percent-encoded. */
function hasPathTraversal(text: string): boolean {
  const decoded = text.replace(/%2f/gi, '/').replace(/%5c/gi, '\\').replace(/%2e/gi, '.');
  return /[/\\]\.\./.test(decoded);
}

/** localhost, 127.0.0.0/8 and ::1 (the hostname as URL gives it: IPv6 in brackets). */
function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1';
  return false;
}
