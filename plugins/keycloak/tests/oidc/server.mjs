// A real OpenID Connect server for the dc-api-x-keycloak tests: panva/oidc-provider (a certified
// OpenID Provider implementation), one Provider per realm, mounted under Keycloak's realm paths:
//
//   {base}/realms/{realm}/.well-known/openid-configuration
//   {base}/realms/{realm}/protocol/openid-connect/token              (client_credentials, password,
//                                                                     refresh_token with rotation)
//   {base}/realms/{realm}/protocol/openid-connect/token/introspect   (RFC 7662)
//   {base}/realms/{realm}/protocol/openid-connect/revoke             (RFC 7009)
//   {base}/realms/{realm}/protocol/openid-connect/certs              (JWKS)
//
// oidc-provider implements client_credentials and refresh_token (with rotation and reuse
// detection: a rotated refresh token presented again revokes the whole grant) itself. It has no
// resource-owner password grant (OAuth 2.0 Security BCP drops it); Keycloak has one, so it is added
// here through oidc-provider's documented extension API, Provider#registerGrantType, issuing the
// provider's own AccessToken / RefreshToken models (so the built-in refresh_token grant, the
// introspection and the revocation endpoints treat them like any other token).
//
// Usage: node server.mjs CONFIG.json  -> prints one line {"port": N} once it listens on 127.0.0.1.
// CONFIG: {"realms": {"<realm>": {"access_token_ttl": 300, "refresh_token_ttl": 1800,
//           "token_delay_ms": 0, "clients": [{client_id, client_secret?, token_endpoint_auth_method,
//           grant_types, access_token_ttl?, refresh_token_ttl?}], "users": [{id, username, password}]}}}
// Instrumentation for the tests (not part of Keycloak's API): GET /__stats lists every token-endpoint
// call {realm, client_id, grant_type, status, t} in order.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import { Provider } from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const HOST = '127.0.0.1';
const ROUTES = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
  jwks: '/protocol/openid-connect/certs',
  userinfo: '/protocol/openid-connect/userinfo',
  end_session: '/protocol/openid-connect/logout',
};
const calls = [];

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}

function makeProvider(issuer, realmName, realm) {
  const clients = realm.clients || [];
  const users = realm.users || [];
  const byClient = Object.fromEntries(clients.map((c) => [c.client_id, c]));
  const accessTtl = (ctx, token, client) => byClient[client?.clientId]?.access_token_ttl ?? realm.access_token_ttl ?? 300;
  const provider = new Provider(issuer, {
    clients: clients.map(({ access_token_ttl, refresh_token_ttl, ...c }) => ({
      redirect_uris: [],
      response_types: [],
      ...c,
    })),
    jwks: { keys: [signingKey()] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    routes: ROUTES,
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTtl,
      ClientCredentials: accessTtl,
      RefreshToken: (ctx, token, client) => byClient[client?.clientId]?.refresh_token_ttl ?? realm.refresh_token_ttl ?? 1800,
      Grant: 14 * 24 * 60 * 60,
      Session: 14 * 24 * 60 * 60,
      Interaction: 3600,
      IdToken: 3600,
    },
    async findAccount(ctx, id) {
      const user = users.find((u) => u.id === id);
      if (!user) return undefined;
      return {
        accountId: id,
        async claims() {
          return { sub: id, preferred_username: user.username };
        },
      };
    },
  });

  // Keycloak's resource-owner password credentials grant (RFC 6749 section 4.3)
  provider.registerGrantType('password', async (ctx) => {
    const { params, client } = ctx.oidc;
    const user = users.find((u) => u.username === params.username);
    if (!user || !params.password || user.password !== params.password) {
      ctx.status = 401;
      ctx.body = { error: 'invalid_grant', error_description: 'Invalid user credentials' };
      return;
    }
    const requested = (params.scope || '').split(' ').filter(Boolean);
    const scope = ['profile', 'email', ...requested.filter((s) => ['openid', 'offline_access'].includes(s))].join(' ');
    const grant = new provider.Grant({ accountId: user.id, clientId: client.clientId });
    grant.addOIDCScope(scope);
    const grantId = await grant.save();
    const at = new provider.AccessToken({ accountId: user.id, client, grantId, gty: 'password', scope });
    const accessToken = await at.save();
    const rt = new provider.RefreshToken({ accountId: user.id, client, grantId, gty: 'password', scope, rotations: 0 });
    const refreshToken = await rt.save();
    ctx.body = {
      access_token: accessToken,
      expires_in: at.expiration,
      refresh_expires_in: rt.expiration,
      refresh_token: refreshToken,
      token_type: 'Bearer',
      'not-before-policy': 0,
      scope,
    };
  }, ['username', 'password', 'scope']);

  // instrumentation + Keycloak's answer shape (refresh_expires_in on refresh answers)
  provider.use(async (ctx, next) => {
    const isToken = ctx.method === 'POST' && ctx.path === ROUTES.token;
    if (isToken && realm.token_delay_ms) {
      await new Promise((resolve) => { setTimeout(resolve, realm.token_delay_ms); });
    }
    await next();
    if (!isToken) return;
    let clientId = null;
    let grantType = null;
    try {
      clientId = ctx.oidc?.client?.clientId ?? null;
      grantType = ctx.oidc?.params?.grant_type ?? null;
    } catch {
      // the request failed before its parameters were assembled
    }
    if (ctx.status === 200 && ctx.body && ctx.body.refresh_token && ctx.body.refresh_expires_in === undefined) {
      const rt = ctx.oidc?.entities?.RefreshToken;
      if (rt) ctx.body.refresh_expires_in = rt.expiration;
    }
    calls.push({ realm: realmName, client_id: clientId, grant_type: grantType, status: ctx.status, t: Date.now() / 1000 });
  });
  return provider;
}

const server = http.createServer();
const providers = new Map();

server.on('request', (req, res) => {
  if (req.url === '/__stats' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ calls }));
    return;
  }
  const m = /^\/realms\/([^/?#]+)(?=[/?#]|$)/.exec(req.url);
  const handle = m && providers.get(decodeURIComponent(m[1]));
  if (!handle) {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'Realm does not exist' }));
    return;
  }
  // mounted under the realm path (oidc-provider's documented way for a path prefix)
  req.originalUrl = req.url;
  req.url = req.url.slice(m[0].length) || '/';
  handle(req, res);
});

server.listen(0, HOST, () => {
  const { port } = server.address();
  for (const [name, realm] of Object.entries(config.realms)) {
    const provider = makeProvider(`http://${HOST}:${port}/realms/${name}`, name, realm);
    providers.set(name, provider.callback());
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); process.exit(0); });
}
