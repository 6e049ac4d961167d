// About: the server's version and node, the build, and this browser. Health
// needs no login; once logged in, GET /api/v1/server adds the build and the
// cluster ID.

import { h } from '../dom.js';
import { details, fmtDateTime, yesNo } from '../format.js';
import { serverLabel } from '../prefs.js';

export default {
  id: 'about',
  title: 'About',
  roles: [],
  topics: ['cluster'],
  public: true,

  async render(root, ctx) {
    let health = null;
    let error = null;
    try {
      health = await ctx.api.get('/api/v1/health');
    } catch (e) {
      error = e;
    }
    const server = ctx.user ? await ctx.api.get('/api/v1/server').catch(() => null) : null;
    const hh = health || {};
    const ss = server || {};
    root.replaceChildren(...[
      ctx.user ? null : h('p', { class: 'back' }, h('a', { href: '#/' }, '← Back to login')),
      error ? h('div', { class: 'notice notice-bad', role: 'alert', 'data-test': 'about-error' }, error.message) : null,
      h('section', { class: 'panel' },
        h('h2', {}, 'Tally license server'),
        details([
          ['Version', ss.version || hh.version || '', 'about-version'],
          ['Build', ss.build || '', 'about-build'],
          ['Node', ss.node || hh.node || '', 'about-node'],
          server ? ['Cluster ID', server.clusterId ? h('code', { class: 'break' }, server.clusterId) : 'None (a single node)', 'about-cluster-id'] : null,
          ['Leader', health ? yesNo(hh.leader) : ''],
          ['Licensing ID fingerprint', hh.fingerprint ? h('code', { class: 'break' }, hh.fingerprint) : ''],
          ['Server time', fmtDateTime(hh.time, true)],
          ['Server', serverLabel(), 'about-server'],
          ['Browser', navigator.userAgent, 'about-browser'],
        ])),
    ].filter(Boolean));
  },
};
