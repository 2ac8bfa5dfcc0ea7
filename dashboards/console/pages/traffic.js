// Traffic counts from line-crossing rules: one bar chart per camera of crossings per
// time bucket (all lines, classes and directions summed), with totals per class.
// Hand-drawn SVG: no chart library, nothing to download.

const SVG = 'http://www.w3.org/2000/svg';
const PERIODS = { '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };
const BUCKET_S = { '15m': 900, '1h': 3600, '1d': 86400 };
const W = 600;
const H = 180;
const PAD = { left: 40, right: 8, top: 12, bottom: 24 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** Bars of `totals` (bucket start → count) over [since, until). */
function chart(totals, since, until, bucket, fmtTime, title) {
  const starts = [];
  for (let ts = Math.floor(since / bucket) * bucket; ts < until; ts += bucket) starts.push(ts);
  const max = Math.max(1, ...starts.map((ts) => totals.get(ts) || 0));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const barW = plotW / Math.max(starts.length, 1);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  root.append(
    svg('line', { class: 'axis', x1: PAD.left, y1: PAD.top + plotH, x2: W - PAD.right, y2: PAD.top + plotH }),
    svg('text', { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end' }, String(max)),
    svg('text', { x: PAD.left - 4, y: PAD.top + plotH, 'text-anchor': 'end' }, '0'));
  const every = Math.ceil(starts.length / 6); // about six time labels, whatever the bucket
  const dayOnly = bucket >= 86400;
  starts.forEach((ts, i) => {
    const count = totals.get(ts) || 0;
    const barH = (count / max) * plotH;
    const bar = svg('rect', {
      class: 'bar', x: PAD.left + i * barW + 1, y: PAD.top + plotH - barH,
      width: Math.max(barW - 2, 1), height: barH,
    });
    bar.append(svg('title', {}, `${fmtTime(ts)}: ${count}`));
    root.append(bar);
    if (i % every === 0) {
      const label = dayOnly ? fmtTime(ts, { day: '2-digit', month: '2-digit' })
        : fmtTime(ts, { hour: '2-digit', minute: '2-digit' });
      root.append(svg('text', { x: PAD.left + i * barW, y: H - 6 }, label));
    }
  });
  return root;
}

export default {
  id: 'traffic',
  route: '#/traffic',
  navKey: 'nav.traffic',
  roles: ['admin', 'operator', 'police', 'viewer'],
  strings: {
    vi: {
      'nav.traffic': 'Lưu lượng',
      'traffic.title': 'Lưu lượng qua vạch đếm',
      'traffic.period': 'Khoảng thời gian', 'traffic.bucket': 'Gộp theo',
      'traffic.period.6h': '6 giờ qua', 'traffic.period.24h': '24 giờ qua', 'traffic.period.7d': '7 ngày qua',
      'traffic.bucket.15m': '15 phút', 'traffic.bucket.1h': '1 giờ', 'traffic.bucket.1d': '1 ngày',
      'traffic.none': 'Chưa có camera nào có quy tắc đếm qua vạch.',
      'traffic.total': 'Tổng: {count}', 'traffic.chart': 'Số lượt qua vạch của {camera}',
    },
    en: {
      'nav.traffic': 'Traffic',
      'traffic.title': 'Line-crossing counts',
      'traffic.period': 'Period', 'traffic.bucket': 'Per',
      'traffic.period.6h': 'Last 6 hours', 'traffic.period.24h': 'Last 24 hours', 'traffic.period.7d': 'Last 7 days',
      'traffic.bucket.15m': '15 minutes', 'traffic.bucket.1h': '1 hour', 'traffic.bucket.1d': '1 day',
      'traffic.none': 'No camera has a line-crossing rule yet.',
      'traffic.total': 'Total: {count}', 'traffic.chart': 'Crossings at {camera}',
    },
  },
  async render(root, { api, t, h, fmtTime, params, navigate, signal }) {
    const period = PERIODS[params.get('period')] ? params.get('period') : '24h';
    const bucket = BUCKET_S[params.get('bucket')] ? params.get('bucket') : (period === '7d' ? '1d' : '1h');
    const choose = (name, values, current) => {
      const select = h('select', { name },
        Object.keys(values).map((v) => h('option', { value: v, selected: v === current }, t(`traffic.${name}.${v}`))));
      select.addEventListener('change', () => {
        const next = { period, bucket, [name]: select.value };
        navigate(`#/traffic?period=${next.period}&bucket=${next.bucket}`);
      }, { signal });
      return select;
    };
    const charts = h('div', { class: 'charts', 'data-testid': 'charts' });
    root.append(h('div', { class: 'toolbar' }, h('h1', {}, t('traffic.title')),
      h('label', {}, t('traffic.period'), choose('period', PERIODS, period)),
      h('label', {}, t('traffic.bucket'), choose('bucket', BUCKET_S, bucket))), charts);

    const cameras = (await api.get('/api/cameras', { signal }))
      .filter((c) => (c.rules || []).some((r) => r.type === 'line_crossing'));
    if (!cameras.length) {
      charts.append(h('p', { class: 'empty' }, t('traffic.none')));
      return;
    }
    const until = Date.now() / 1000;
    const since = until - PERIODS[period];
    await Promise.all(cameras.map(async (camera) => {
      const box = h('figure', { class: 'chart', dataset: { camera: camera.id } });
      charts.append(box);
      const points = await api.get('/api/stats/traffic', {
        params: { camera_id: camera.id, bucket, since_ts: since, until_ts: until }, signal,
      });
      const totals = new Map();
      const perLabel = new Map();
      for (const p of points) {
        totals.set(p.bucket_start_ts, (totals.get(p.bucket_start_ts) || 0) + p.count);
        perLabel.set(p.label, (perLabel.get(p.label) || 0) + p.count);
      }
      const sum = [...perLabel.values()].reduce((a, b) => a + b, 0);
      box.append(
        h('figcaption', {}, h('strong', {}, camera.name || camera.id), ' · ', t('traffic.total', { count: sum })),
        chart(totals, since, until, BUCKET_S[bucket], fmtTime, t('traffic.chart', { camera: camera.name || camera.id })),
        h('p', { class: 'muted' }, [...perLabel].map(([label, n]) => `${t(`label.${label}`)}: ${n}`).join(' · ')));
    }));
  },
};
