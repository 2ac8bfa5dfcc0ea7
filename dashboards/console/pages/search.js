// Incident search. The filters live in the hash ('#/search?camera_id=a&since=...')
// so a search can be bookmarked, shared and survives a language switch. Times are
// entered as Vietnam local time and sent as UTC epoch seconds.
import { fromLocalInput, toLocalInput } from '../i18n.js';

const TYPES = ['intrusion', 'line_crossing', 'wrong_way', 'loitering', 'illegal_parking', 'crowding',
  'speeding', 'tamper', 'camera_offline'];
const LABELS = ['person', 'bicycle', 'motorbike', 'car', 'bus', 'truck'];
const STATUSES = ['new', 'acknowledged', 'confirmed', 'false_alarm', 'closed'];
const PAGE = 24;

export default {
  id: 'search',
  route: '#/search',
  navKey: 'nav.search',
  roles: ['admin', 'operator', 'police', 'viewer'],
  strings: {
    vi: {
      'nav.search': 'Tìm kiếm',
      'search.title': 'Tìm sự việc',
      'search.cameras': 'Camera', 'search.since': 'Từ', 'search.until': 'Đến', 'search.type': 'Loại',
      'search.label': 'Đối tượng', 'search.status': 'Trạng thái', 'search.any': 'Tất cả',
      'search.submit': 'Tìm', 'search.none': 'Không tìm thấy sự việc nào.', 'search.count': '{count} kết quả',
      'search.noSnapshot': 'Không có ảnh',
    },
    en: {
      'nav.search': 'Search',
      'search.title': 'Find incidents',
      'search.cameras': 'Cameras', 'search.since': 'From', 'search.until': 'To', 'search.type': 'Type',
      'search.label': 'Object', 'search.status': 'Status', 'search.any': 'Any',
      'search.submit': 'Search', 'search.none': 'No incidents found.', 'search.count': '{count} results',
      'search.noSnapshot': 'No snapshot',
    },
  },
  async render(root, { api, t, h, fmtTime, params, navigate, signal }) {
    const cameras = await api.get('/api/cameras', { signal });
    const chosen = new Set(params.getAll('camera_id'));
    const cameraSelect = h('select', { multiple: true, name: 'camera_id', 'aria-label': t('search.cameras') },
      cameras.map((c) => h('option', { value: c.id, selected: chosen.has(c.id) }, c.name || c.id)));
    const one = (name, values, prefix) => h('select', { name },
      h('option', { value: '' }, t('search.any')),
      values.map((v) => h('option', { value: v, selected: params.get(name) === v }, t(`${prefix}.${v}`))));
    const type = one('type', TYPES, 'type');
    const label = one('label', LABELS, 'label');
    const status = one('status', STATUSES, 'status');
    const sinceTs = Number(params.get('since_ts')) || Date.now() / 1000 - 86400;
    const since = h('input', { type: 'datetime-local', name: 'since', value: toLocalInput(sinceTs) });
    const until = h('input', {
      type: 'datetime-local', name: 'until',
      value: params.get('until_ts') ? toLocalInput(Number(params.get('until_ts'))) : null,
    });
    const form = h('form', { class: 'toolbar', 'data-testid': 'search-form' },
      h('label', {}, t('search.cameras'), cameraSelect),
      h('label', {}, t('search.since'), since),
      h('label', {}, t('search.until'), until),
      h('label', {}, t('search.type'), type),
      h('label', {}, t('search.label'), label),
      h('label', {}, t('search.status'), status),
      h('button', { type: 'submit', class: 'primary' }, t('search.submit')));
    const summary = h('p', { class: 'muted' });
    const results = h('div', { class: 'results', 'data-testid': 'results' });
    const more = h('button', { type: 'button', hidden: true }, t('app.more'));
    root.append(h('h1', {}, t('search.title')), form, summary, results, more);

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const query = new URLSearchParams();
      for (const option of cameraSelect.selectedOptions) query.append('camera_id', option.value);
      for (const select of [type, label, status]) if (select.value) query.set(select.name, select.value);
      const from = fromLocalInput(since.value);
      const to = fromLocalInput(until.value);
      if (from !== null) query.set('since_ts', String(from));
      if (to !== null) query.set('until_ts', String(to));
      query.set('run', '1');
      navigate(`#/search?${query}`);
    }, { signal });

    if (!params.get('run')) return undefined; // the form only, until the first search
    const filters = {
      camera_id: params.getAll('camera_id'), type: params.get('type'), label: params.get('label'),
      status: params.get('status'), since_ts: sinceTs, until_ts: params.get('until_ts'),
      sort: 'newest', limit: PAGE,
    };
    let shown = 0;
    async function load(cursor) {
      more.disabled = true;
      const page = await api.get('/api/incidents', { params: { ...filters, cursor }, signal });
      for (const i of page.items) {
        results.append(h('a', { class: 'result', href: `#/review?id=${encodeURIComponent(i.id)}`, dataset: { incident: i.id } },
          i.snapshot_url ? h('img', { src: i.snapshot_url, alt: t(`type.${i.type}`), loading: 'lazy' })
            : h('div', { class: 'empty' }, t('search.noSnapshot')),
          h('div', { class: 'body' },
            h('strong', {}, `${t(`type.${i.type}`)} · ${i.camera_id}`),
            h('span', { class: 'muted' }, fmtTime(i.start_ts)),
            h('span', {}, h('span', { class: `badge ${i.status}` }, t(`status.${i.status}`)),
              ` ${i.labels.map((l) => t(`label.${l}`)).join(', ')}`))));
      }
      shown += page.items.length;
      summary.textContent = shown ? t('search.count', { count: shown }) : t('search.none');
      more.hidden = !page.next_cursor;
      more.disabled = false;
      more.onclick = () => load(page.next_cursor).catch(() => {});
    }
    await load(null);
    return undefined;
  },
};
