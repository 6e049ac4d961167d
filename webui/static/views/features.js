// Features: the rights aggregated by (name, version), paged on the server,
// with an exact-name search. A row opens the feature's details.

import { h } from '../dom.js';
import { pagedTable } from '../table.js';
import { fmtExpiry, yesNo, routeOf } from '../format.js';

const SEARCH_DELAY_MS = 400;

export function overdraftText(f) {
  if (!f.overdraft) return '0';
  return f.overdraftUsed ? `${f.overdraft} (${f.overdraftUsed} used)` : String(f.overdraft);
}

export function countText(f, n) {
  return f.counted === false ? 'uncounted' : String(n ?? 0);
}

export const FEATURE_COLUMNS = [
  { title: 'Feature', key: 'name', value: (f) => f.name },
  { title: 'Version', key: 'version', value: (f) => f.version },
  { title: 'Total count', key: 'total', class: 'num', value: (f) => countText(f, f.total) },
  { title: 'Used', key: 'used', class: 'num', value: (f) => String(f.used ?? 0) },
  { title: 'Available', key: 'available', class: 'num', value: (f) => countText(f, f.available) },
  { title: 'First expiration', key: 'firstExpiry', value: (f) => fmtExpiry(f.firstExpiry) },
  { title: 'Last expiration', key: 'lastExpiry', value: (f) => fmtExpiry(f.lastExpiry) },
  { title: 'Overdraft', key: 'overdraft', class: 'num', value: overdraftText },
  { title: 'Metered', key: 'metered', value: (f) => yesNo(f.metered) },
  { title: 'Counted', key: 'counted', value: (f) => yesNo(f.counted) },
];

export default {
  id: 'features',
  title: 'Features',
  roles: [],
  topics: ['features'],
  keep: true,

  async render(root, ctx) {
    const { api, state } = ctx;
    state.search = state.search || '';
    if (state.searchDraft === undefined) state.searchDraft = state.search;

    const makeTable = () => pagedTable({
      name: 'features',
      state,
      columns: FEATURE_COLUMNS,
      key: (f) => `${f.name}/${f.version}`,
      fetch: (page, pageSize) => api.get('/api/v1/features', { name: state.search, page, pageSize }),
      onRow: (f) => ctx.navigate(routeOf('features', f.name, f.version)),
    });

    const holder = h('div', { class: 'table-holder' });
    let timer = null;
    const apply = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (!input.isConnected) return;
      const value = input.value.trim();
      if (value === state.search) return;
      state.search = value;
      state.pages.features = 1;
      holder.replaceChildren(makeTable());
    };
    const input = h('input', {
      type: 'search',
      name: 'name',
      id: 'feature-search',
      'data-test': 'feature-search',
      placeholder: 'Exact feature name',
      autocomplete: 'off',
      spellcheck: 'false',
      value: state.searchDraft,
      oninput: () => {
        state.searchDraft = input.value;
        if (timer) clearTimeout(timer);
        timer = setTimeout(apply, SEARCH_DELAY_MS);
      },
    });
    const form = h('form', {
      class: 'toolbar',
      role: 'search',
      onsubmit: (ev) => {
        ev.preventDefault();
        apply();
      },
    },
    h('label', { for: 'feature-search' }, 'Search'),
    input,
    h('button', { type: 'submit', class: 'btn' }, 'Search'),
    h('button', {
      type: 'button',
      class: 'btn btn-secondary',
      'data-test': 'feature-search-clear',
      onclick: () => {
        input.value = '';
        state.searchDraft = '';
        apply();
        input.focus();
      },
    }, 'Clear'));

    const table = makeTable();
    await table.loaded;
    holder.appendChild(table);
    root.replaceChildren(form, holder);
    if (state.searchDraft.trim() !== state.search) timer = setTimeout(apply, SEARCH_DELAY_MS);
  },
};
