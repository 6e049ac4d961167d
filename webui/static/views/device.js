// Device details (#/devices/TYPE/VALUE): the device, its hostids and
// attributes, the features it holds, and the drop button for users with
// DROPDEVICE when the UI setting "allow device drop" is on.

import { h } from '../dom.js';
import { pagedTable, localFetch } from '../table.js';
import { details, fmtDateTime, routeOf } from '../format.js';
import { onlinePill, devicePath, canDrop, dropButton } from './devices.js';

export default {
  id: 'device',
  route: 'devices',
  detail: true,
  nav: false,
  title: 'Device',
  roles: [],
  topics: ['devices', 'features'],
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    const [type, value] = ctx.params;
    const back = h('p', { class: 'back' }, h('a', { href: '#/devices' }, '← Devices'));
    if (!type || !value) {
      root.replaceChildren(back, h('div', { class: 'notice', 'data-test': 'not-found' }, 'Name a device: #/devices/TYPE/VALUE.'));
      return;
    }
    ctx.setTitle(`Device ${value}`);
    let d;
    try {
      d = await api.get(devicePath(type, value));
    } catch (e) {
      if (e.status === 404 || e.status === 400) {
        root.replaceChildren(back, h('div', { class: 'notice', 'data-test': 'not-found' }, e.message));
        return;
      }
      throw e;
    }
    const info = d.info || {};
    const id = d.id || info.id || { type, value };

    const hostids = pagedTable({
      name: 'hostids',
      state,
      columns: [
        { title: 'Value', key: 'value', value: (x) => x.value },
        { title: 'Type', key: 'type', value: (x) => x.type },
        { title: 'Device ID', key: 'primary', value: (x) => x.type === id.type && x.value === id.value ? 'yes' : '' },
      ],
      key: (x) => `${x.type}/${x.value}`,
      fetch: localFetch(info.hostIds && info.hostIds.length ? info.hostIds : [id]),
    });
    const attrs = Object.entries(info.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
    const attributes = pagedTable({
      name: 'attributes',
      state,
      columns: [
        { title: 'Attribute', key: 'name', value: ([k]) => k },
        { title: 'Value', key: 'value', value: ([, v]) => v },
      ],
      key: ([k]) => k,
      fetch: localFetch(attrs),
    });
    const consumed = pagedTable({
      name: 'consumed',
      state,
      columns: [
        { title: 'Feature', key: 'feature', value: (l) => l.feature },
        { title: 'Version', key: 'version', value: (l) => l.version },
        { title: 'Count', key: 'count', class: 'num', value: (l) => String(l.count ?? 0) },
        { title: 'Expiry', key: 'expiry', value: (l) => fmtDateTime(l.expiry) },
        { title: 'Overdraft', key: 'overdraft', class: 'num', value: (l) => String(l.overdraft ?? 0) },
      ],
      key: (l) => `${l.feature}/${l.version}`,
      fetch: localFetch(d.leases || []),
      onRow: (l) => ctx.navigate(routeOf('features', l.feature, l.version)),
    });
    await Promise.all([hostids.loaded, attributes.loaded, consumed.loaded]);

    const drop = canDrop(ctx) ? dropButton(ctx, id, () => ctx.navigate('#/devices')) : null;
    if (drop) drop.textContent = 'Drop device';

    root.replaceChildren(
      h('div', { class: 'toolbar spread' }, back, drop),
      h('section', { class: 'panel' },
        details([
          ['Device ID', id.value, 'device-id'],
          ['ID type', id.type, 'device-idtype'],
          ['Device type', d.deviceType || info.type || '', 'device-type'],
          ['Alias', d.alias || info.alias || '', 'device-alias'],
          ['Online', onlinePill(d.online)],
          ['Device expiry', fmtDateTime(d.expiry), 'device-expiry'],
          ['Host name', info.hostname || ''],
          ['User', info.user || ''],
          ['Pool', d.pool || ''],
          ['Last seen', fmtDateTime(d.lastSeen)],
        ])),
      h('section', { class: 'panel' }, h('h2', {}, 'Consumed features'), consumed),
      h('div', { class: 'columns' },
        h('section', { class: 'panel' }, h('h2', {}, 'Host IDs'), hostids),
        h('section', { class: 'panel' }, h('h2', {}, 'Attributes'), attributes)));
  },
};
