// The what-if replay's result (GET /api/replays/{id} → result): what the candidate config
// would have raised on the footage compared with the live config — counts per rule and
// type, line counts, and every incident with a link to the footage at its moment.
import { table } from './kit.js';

export const resultStrings = {
  vi: {
    'rr.footage': 'Đã chạy lại video {from} – {to} ({segments} đoạn): {frames} khung phân tích, {detected} khung có chuyển động được phát hiện.',
    'rr.totals': 'Cấu hình thử: {candidate} sự kiện · cấu hình đang chạy: {current} · chỉ có ở cấu hình thử: {onlyCandidate} · chỉ có ở cấu hình đang chạy: {onlyCurrent} · cả hai: {both}',
    'rr.byRule': 'Số sự kiện theo quy tắc',
    'rr.byType': 'Số sự kiện theo loại',
    'rr.traffic': 'Đếm lượt qua vạch',
    'rr.incidents': 'Các sự kiện',
    'rr.col.rule': 'Quy tắc', 'rr.col.type': 'Loại', 'rr.col.current': 'Đang chạy', 'rr.col.candidate': 'Cấu hình thử',
    'rr.col.change': 'Chênh lệch', 'rr.col.key': 'Vạch / đối tượng / chiều', 'rr.col.time': 'Thời điểm',
    'rr.col.labels': 'Đối tượng', 'rr.col.zone': 'Vùng', 'rr.col.score': 'Điểm', 'rr.col.match': 'Kết quả',
    'rr.col.footage': 'Video',
    'rr.match.both': 'Cả hai', 'rr.match.only_candidate': 'Chỉ cấu hình thử (mới)',
    'rr.match.only_current': 'Chỉ cấu hình đang chạy (sẽ mất)',
    'rr.watch': 'Xem video',
    'rr.none': 'Không cấu hình nào tạo sự kiện trên đoạn video này.',
  },
  en: {
    'rr.footage': 'Replayed the footage {from} – {to} ({segments} segments): {frames} frames at the detect rate, {detected} let through by the motion gate.',
    'rr.totals': 'Candidate: {candidate} incidents · live config: {current} · only with the candidate: {onlyCandidate} · only with the live config: {onlyCurrent} · both: {both}',
    'rr.byRule': 'Incidents per rule',
    'rr.byType': 'Incidents per type',
    'rr.traffic': 'Line crossing counts',
    'rr.incidents': 'Incidents',
    'rr.col.rule': 'Rule', 'rr.col.type': 'Type', 'rr.col.current': 'Live config', 'rr.col.candidate': 'Candidate',
    'rr.col.change': 'Change', 'rr.col.key': 'Line / object / direction', 'rr.col.time': 'Time',
    'rr.col.labels': 'Objects', 'rr.col.zone': 'Zone', 'rr.col.score': 'Score', 'rr.col.match': 'Outcome',
    'rr.col.footage': 'Footage',
    'rr.match.both': 'Both', 'rr.match.only_candidate': 'Candidate only (new)',
    'rr.match.only_current': 'Live config only (would go)',
    'rr.watch': 'Watch',
    'rr.none': 'Neither config raised an incident on this footage.',
  },
};

const signed = (n) => (n > 0 ? `+${n}` : String(n));

/** Rows of {key, current, candidate} for every key either side has. */
function compareCounts(current, candidate) {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(candidate)])].sort();
  return keys.map((key) => ({ key, current: current[key] || 0, candidate: candidate[key] || 0 }));
}

function countTable(h, headers, rows, keyCell, attr) {
  return table(headers, rows.map((r) => h('tr', { dataset: { [attr]: r.key } },
    keyCell(r.key), h('td', { dataset: { side: 'current' } }, String(r.current)),
    h('td', { dataset: { side: 'candidate' } }, String(r.candidate)),
    h('td', { class: r.candidate === r.current ? 'muted' : null }, signed(r.candidate - r.current)))));
}

/** The result as DOM; `cameraId` makes the footage links. */
export function renderResult(result, cameraId, { h, t, fmtTime }) {
  const { current, candidate } = result;
  const types = {};
  for (const side of [current, candidate]) for (const i of side.incidents) types[i.rule] = i.type;
  const ruleRows = compareCounts(current.by_rule, candidate.by_rule);
  const typeRows = compareCounts(current.by_type, candidate.by_type);
  const trafficRows = compareCounts(current.traffic, candidate.traffic);
  const change = ['current', 'candidate', 'change'].map((k) => t(`rr.col.${k}`));
  // Every incident once: the candidate's (both / new), then the live config's that go.
  const incidents = [...candidate.incidents, ...current.incidents.filter((i) => i.match === 'only_current')]
    .sort((a, b) => a.start_ts - b.start_ts);
  const total = (side) => side.incidents.length;

  const out = [
    h('p', { class: 'muted' }, t('rr.footage', {
      from: fmtTime(result.footage_start_ts), to: fmtTime(result.footage_end_ts), segments: result.segments,
      frames: result.frames_decoded, detected: result.frames_detected,
    })),
    h('p', { 'data-testid': 'replay-totals' }, t('rr.totals', {
      candidate: total(candidate), current: total(current), onlyCandidate: result.only_candidate,
      onlyCurrent: result.only_current, both: result.both,
    })),
  ];
  if (!incidents.length) out.push(h('p', { class: 'empty' }, t('rr.none')));
  if (ruleRows.length) {
    out.push(h('h2', {}, t('rr.byRule')), countTable(h, [t('rr.col.rule'), t('rr.col.type'), ...change], ruleRows,
      (key) => [h('td', {}, key), h('td', {}, types[key] ? t(`type.${types[key]}`) : '')], 'rule'));
    out.push(h('h2', {}, t('rr.byType')), countTable(h, [t('rr.col.type'), ...change], typeRows,
      (key) => h('td', {}, t(`type.${key}`)), 'type'));
  }
  if (trafficRows.length) {
    out.push(h('h2', {}, t('rr.traffic')), countTable(h, [t('rr.col.key'), ...change], trafficRows,
      (key) => h('td', { class: 'mono' }, key), 'key'));
  }
  if (incidents.length) {
    const headers = ['time', 'rule', 'type', 'labels', 'zone', 'score', 'match', 'footage'].map((k) => t(`rr.col.${k}`));
    out.push(h('h2', {}, t('rr.incidents')), table(headers, incidents.map((i) => h('tr', {
      class: `match-${i.match}`, dataset: { match: i.match },
    },
    h('td', {}, fmtTime(i.start_ts)), h('td', {}, i.rule), h('td', {}, t(`type.${i.type}`)),
    h('td', {}, i.labels.map((l) => t(`label.${l}`)).join(', ')), h('td', {}, i.zone || ''),
    h('td', {}, i.peak_score.toFixed(2)), h('td', {}, t(`rr.match.${i.match}`)),
    h('td', {}, h('a', {
      // The footage page opens the camera's timeline there and plays from that moment.
      href: `#/footage?camera=${encodeURIComponent(cameraId)}&ts=${Math.floor(i.start_ts)}`,
      'data-testid': 'replay-footage-link',
    }, t('rr.watch')))))));
  }
  return out;
}
