// A real OpenID Connect provider (the certified `oidc-provider` package) for Strata's
// end-to-end tests of STS AssumeRoleWithWebIdentity.
//
//   node provider.mjs --port P --keys KEYS.json --ttl SECONDS
//
// Issuer http://127.0.0.1:P; signs with the private JWKS in KEYS.json ({"keys":[...]}, RS256
// RSA keys with a kid; its public half is served at the discovery document's jwks_uri). The
// client_credentials grant issues RS256 JWT access tokens for any resource indicator that
// starts with https:// (aud = that resource), valid for SECONDS; any other resource is
// invalid_target, and a request without one gets an opaque token. Clients, by id / secret
// (HTTP Basic, or client_id and client_secret in the form body):
//   reader / reader-secret   tokens carry  policy: "readonly"
//   writer / writer-secret   tokens carry  policy: "readwrite"
//   nobody / nobody-secret   no policy claim
//   groups / groups-secret   tokens carry  policy: ["readonly", "writeonly"]
// Prints one line `ready` on stdout once listening; exits on SIGTERM or SIGINT.
// Used by tests/e2e/oidc.py (run with cwd tests/oidc, after `npm ci` there).
import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    keys: { type: 'string' },
    ttl: { type: 'string', default: '300' },
  },
  strict: true,
});

function die(msg) {
  process.stderr.write(`provider.mjs: ${msg}\n`);
  process.exit(2);
}

const port = Number.parseInt(args.port ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) die('--port P is required (1..65535)');
if (!args.keys) die('--keys KEYS.json is required');
const ttl = Number.parseInt(args.ttl, 10);
if (!Number.isInteger(ttl) || ttl <= 0) die('--ttl SECONDS must be a positive integer');

let jwks;
try {
  jwks = JSON.parse(readFileSync(args.keys, 'utf8'));
} catch (err) {
  die(`cannot read the key set ${args.keys}: ${err.message}`);
}
if (!Array.isArray(jwks?.keys) || jwks.keys.length === 0) die(`${args.keys} has no "keys"`);

const issuer = `http://127.0.0.1:${port}`;

// The custom claim each client's tokens carry (none for `nobody`).
const POLICY_BY_CLIENT = {
  reader: 'readonly',
  writer: 'readwrite',
  groups: ['readonly', 'writeonly'],
};

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  // oidc-provider takes client_secret_basic and client_secret_post alike for such a client.
  token_endpoint_auth_method: 'client_secret_basic',
});

const configuration = {
  clients: ['reader', 'writer', 'nobody', 'groups'].map(client),
  jwks,
  // Cookies are unused by the client_credentials grant; a fresh key per run keeps the
  // provider from falling back to (and warning about) its insecure default.
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'sts'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A token request must name its resource; there is no default audience.
      defaultResource: async () => undefined,
      useGrantedResource: async () => false,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (typeof resourceIndicator === 'string' && resourceIndicator.startsWith('https://')) {
          return {
            scope: 'sts',
            audience: resourceIndicator,
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        }
        throw new errors.InvalidTarget('resource indicators must start with https://');
      },
    },
  },
  extraTokenClaims: async (_ctx, token) => {
    if (token.kind !== 'ClientCredentials' && token.kind !== 'AccessToken') return undefined;
    const policy = POLICY_BY_CLIENT[token.clientId];
    return policy === undefined ? undefined : { policy };
  },
  ttl: {
    ClientCredentials: ttl,
    AccessToken: ttl,
  },
};

const provider = new Provider(issuer, configuration);
// The log (stderr) gets one line per grant and per error; never a request body, a client
// secret or a token.
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server_error: ${err?.stack ?? err}\n`);
});
provider.on('grant.error', (_ctx, err) => {
  process.stderr.write(`grant.error: ${err?.name}: ${err?.message} ${err?.error_description ?? ''}\n`);
});
provider.on('grant.success', (ctx) => {
  process.stderr.write(`grant.success: client=${ctx.oidc?.client?.clientId}\n`);
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});
server.on('error', (err) => {
  process.stderr.write(`provider.mjs: cannot listen on 127.0.0.1:${port}: ${err.message}\n`);
  process.exit(1);
});

function shutdown(signal) {
  process.stderr.write(`provider.mjs: ${signal}, exiting\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
