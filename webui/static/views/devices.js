// Devices: every device the server knows, paged on the server, with its
// online state and device expiry. A row opens the device's details.

import { h } from '../dom.js';
import { pagedTable } from '../table.js';
import { fmtDateTime, pill, routeOf } from '../format.js';

export function onlinePill(online) {
  return online ? pill('ok', 'online', { 'data-test': 'online' }) : pill('neutral', 'offline', { 'data-test': 'online' });
}

export function devicePath(type, value) {
  return `/api/v1/devices/${encodeURIComponent(type)}/${encodeURIComponent(value)}`;
}

// canDrop: the user holds DROPDEVICE and the UI setting allows drops.
export function canDrop(ctx) {
  return Boolean(ctx.settings.allowDeviceDrop) && ctx.can('DROPDEVICE');
}

// dropButton asks, drops the device and calls done() after a drop.
export function dropButton(ctx, id, done, small = false) {
  const button = h('button', {
    type: 'button',
    class: ['btn', 'btn-danger', small && 'btn-small'],
    'data-write': '',
    'data-test': 'drop-device',
    onclick: async () => {
      if (!confirm(`Drop device ${id.value} (${id.type})? Its counts are freed at once.`)) return;
      button.disabled = true;
      try {
        await ctx.api.send('DELETE', devicePath(id.type, id.value));
        ctx.toast(`Device ${id.value} dropped.`);
        done();
      } catch (e) {
        ctx.toast(e.message, 'error');
        button.disabled = false;
      }
    },
  }, 'Drop');
  return button;
}

export const DEVICE_COLUMNS = [
  { title: 'Device ID', key: 'id', value: (d) => d.id ? d.id.value : '' },
  { title: 'ID type', key: 'type', value: (d) => d.id ? d.id.type : '' },
  { title: 'Device type', key: 'deviceType', value: (d) => d.deviceType || '' },
  { title: 'Alias', key: 'alias', value: (d) => d.alias || '' },
  { title: 'Online', key: 'online', value: (d) => onlinePill(d.online) },
  { title: 'Device expiry', key: 'expiry', value: (d) => fmtDateTime(d.expiry) },
];

export default {
  id: 'devices',
  title: 'Devices',
  roles: [],
  topics: ['devices'],
  keep: true,

  async render(root, ctx) {
    const table = pagedTable({
      name: 'devices',
      state: ctx.state,
      columns: canDrop(ctx)
        ? [...DEVICE_COLUMNS, { title: 'Actions', key: 'actions', class: 'col-actions', value: (d) => d.id && dropButton(ctx, d.id, () => ctx.rerender(), true) }]
        : DEVICE_COLUMNS,
      key: (d) => d.id ? `${d.id.type}/${d.id.value}` : '',
      fetch: (page, pageSize) => ctx.api.get('/api/v1/devices', { page, pageSize }),
      onRow: (d) => d.id && ctx.navigate(routeOf('devices', d.id.type, d.id.value)),
    });
    await table.loaded;
    root.replaceChildren(table);
  },
};
