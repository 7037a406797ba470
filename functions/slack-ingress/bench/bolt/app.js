// Peer for `make bench`: the smallest Bolt for JavaScript app that answers a
// Slack slash command the way Slack's own framework does. It verifies the v0
// signature (Bolt's HTTPReceiver) and acks /coffee; nothing else.
//
// It never calls Slack: passing token + botId + botUserId with
// tokenVerificationEnabled=false makes Bolt's singleAuthorization resolve the
// bot identity from those values (runAuthTestForBotToken skips auth.test when
// both ids are given), neither at start nor per request. The Web API base URL
// points at the local stand-in anyway, so a stray call could never leave the
// machine. Log level is WARN, and Bolt logs nothing per request at that level.
'use strict';

const { App, LogLevel } = require('@slack/bolt');

const port = Number.parseInt(process.env.PORT || '3000', 10);
const signingSecret = process.env.SLACK_SIGNING_SECRET;
if (!signingSecret) {
  console.error('SLACK_SIGNING_SECRET is required');
  process.exit(2);
}

const app = new App({
  signingSecret,
  token: process.env.SLACK_BOT_TOKEN || 'xoxb-local-standin',
  botId: 'B0COFFEEBOT',
  botUserId: 'U0COFFEEBOT',
  tokenVerificationEnabled: false,
  endpoints: '/slack/commands',
  logLevel: LogLevel.WARN,
  clientOptions: { slackApiUrl: process.env.SLACK_API_URL || 'http://127.0.0.1:9/api/' },
  customRoutes: [
    {
      path: '/health/readiness',
      method: ['GET'],
      handler: (req, res) => {
        res.writeHead(200);
        res.end();
      },
    },
  ],
});

app.command('/coffee', async ({ ack }) => {
  await ack();
});

(async () => {
  await app.start({ port, host: '127.0.0.1' });
  console.log(JSON.stringify({ msg: 'bolt ready', port }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    app.stop().finally(() => process.exit(0));
  });
}
