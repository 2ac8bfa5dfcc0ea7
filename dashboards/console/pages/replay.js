// Admin: what-if replay. Pick a camera and a window of its recorded footage, edit a
// candidate config (the live one with changed zones, thresholds and rule parameters),
// run it (POST /api/replays, a background job polled for progress) and compare the
// incidents it would raise with the live config's. Nothing changes until "Apply".
import { fromLocalInput, toLocalInput } from '../i18n.js';
import { editableCamera, field, kitStrings, latestVersion, safely, table, useStyles } from './kit.js';
import { resultStrings, renderResult } from './replay-result.js';
import { thresholdStrings, thresholdsTable } from './thresholds.js';
import { createEditor } from './zone-editor.js';

const SPANS_S = [30, 60, 300, 600, 1800, 3600]; // the API replays at most an hour
const POLL_MS = 1000;
// Rule parameters the page offers, with their input step (core/rule_config.py).
const PARAMS = {
  min_confidence: 0.05, cooldown_s: 1, min_inside_s: 0.5, hysteresis: 0.005, min_distance: 0.01,
  min_duration_s: 0.5, min_dwell_s: 5, max_speed: 0.005, max_speed_kmh: 0.5, min_stopped_s: 5,
  min_count: 1, limit_kmh: 1, window_s: 0.5, check_every_s: 0.5, dark_level: 1, blur_ratio: 0.05,
  moved_ratio: 0.05, after_s: 5,
};
const PARAM_NAMES = {
  vi: {
    min_confidence: 'Độ tin cậy tối thiểu', cooldown_s: 'Nghỉ giữa hai cảnh báo (giây)',
    min_inside_s: 'Ở trong vùng tối thiểu (giây)', hysteresis: 'Vượt qua vạch tối thiểu (phần ảnh)',
    min_distance: 'Quãng ngược chiều tối thiểu', min_duration_s: 'Kéo dài tối thiểu (giây)',
    min_dwell_s: 'Lảng vảng tối thiểu (giây)', max_speed: 'Tốc độ coi là đứng yên (phần ảnh/giây)',
    max_speed_kmh: 'Tốc độ coi là đứng yên (km/h)', min_stopped_s: 'Đỗ tối thiểu (giây)',
    min_count: 'Số người tối thiểu', limit_kmh: 'Giới hạn tốc độ (km/h)', window_s: 'Cửa sổ đo (giây)',
    check_every_s: 'Kiểm tra mỗi (giây)', dark_level: 'Mức tối (0–255)', blur_ratio: 'Tỉ lệ mờ',
    moved_ratio: 'Tỉ lệ xê dịch', after_s: 'Mất kết nối sau (giây)',
  },
  en: {
    min_confidence: 'Minimum confidence', cooldown_s: 'Quiet time between alerts (s)',
    min_inside_s: 'Minimum time inside (s)', hysteresis: 'Distance past the line (share)',
    min_distance: 'Minimum distance against the flow', min_duration_s: 'Minimum duration (s)',
    min_dwell_s: 'Minimum dwell (s)', max_speed: 'Stopped below (share/s)', max_speed_kmh: 'Stopped below (km/h)',
    min_stopped_s: 'Minimum stop (s)', min_count: 'Minimum people', limit_kmh: 'Speed limit (km/h)',
    window_s: 'Measuring window (s)', check_every_s: 'Check every (s)', dark_level: 'Dark level (0–255)',
    blur_ratio: 'Blur ratio', moved_ratio: 'Moved ratio', after_s: 'Offline after (s)',
  },
};
const prefixed = (names) => Object.fromEntries(Object.entries(names).map(([k, v]) => [`replay.p.${k}`, v]));

const STRINGS = {
  vi: {
    'nav.replay': 'Thử cấu hình',
    'replay.title': 'Thử cấu hình trên video đã ghi',
    'replay.intro': 'Chạy lại video đã ghi với vùng, ngưỡng và quy tắc thử, rồi so với cấu hình đang chạy. Không có gì thay đổi cho đến khi bấm "Áp dụng".',
    'replay.camera': 'Camera', 'replay.from': 'Từ (giờ Việt Nam)', 'replay.span': 'Độ dài',
    'replay.span.30': '30 giây', 'replay.span.60': '1 phút', 'replay.span.300': '5 phút',
    'replay.span.600': '10 phút', 'replay.span.1800': '30 phút', 'replay.span.3600': '1 giờ',
    'replay.endNow': 'Đến hiện tại',
    'replay.run': 'Chạy thử', 'replay.cancel': 'Dừng', 'replay.reset': 'Bỏ các thay đổi',
    'replay.apply': 'Áp dụng cấu hình thử',
    'replay.zonesHint': 'Vùng và vạch thử: bấm một hình rồi kéo các góc. Tên vùng giữ nguyên (quy tắc dùng tên).',
    'replay.rules': 'Tham số quy tắc',
    'replay.noRules': 'Camera này chưa có quy tắc: không có sự kiện nào để so.',
    'replay.col.rule': 'Quy tắc', 'replay.col.params': 'Tham số',
    'replay.status.queued': 'Đang chờ…', 'replay.status.running': 'Đang chạy lại: {percent}%',
    'replay.status.done': 'Xong ({seconds} giây).', 'replay.status.failed': 'Lỗi: {error}',
    'replay.status.cancelled': 'Đã dừng: {error}',
    'replay.window': '{from} – {to}',
    'replay.noCameras': 'Chưa có camera nào.',
    ...prefixed(PARAM_NAMES.vi),
  },
  en: {
    'nav.replay': 'What-if',
    'replay.title': 'Try a config on recorded footage',
    'replay.intro': 'Replay recorded footage with candidate zones, thresholds and rules, and compare with the live config. Nothing changes until you press "Apply".',
    'replay.camera': 'Camera', 'replay.from': 'From (Vietnam time)', 'replay.span': 'Length',
    'replay.span.30': '30 s', 'replay.span.60': '1 min', 'replay.span.300': '5 min',
    'replay.span.600': '10 min', 'replay.span.1800': '30 min', 'replay.span.3600': '1 hour',
    'replay.endNow': 'Ending now',
    'replay.run': 'Run replay', 'replay.cancel': 'Stop', 'replay.reset': 'Discard changes',
    'replay.apply': 'Apply the candidate',
    'replay.zonesHint': 'Candidate zones and lines: click a shape, then drag its corners. Names stay (rules use them).',
    'replay.rules': 'Rule parameters',
    'replay.noRules': 'This camera has no rules yet: there are no incidents to compare.',
    'replay.col.rule': 'Rule', 'replay.col.params': 'Parameters',
    'replay.status.queued': 'Queued…', 'replay.status.running': 'Replaying: {percent}%',
    'replay.status.done': 'Done ({seconds} s).', 'replay.status.failed': 'Failed: {error}',
    'replay.status.cancelled': 'Stopped: {error}',
    'replay.window': '{from} – {to}',
    'replay.noCameras': 'No cameras yet.',
    ...prefixed(PARAM_NAMES.en),
  },
};

const copy = (value) => JSON.parse(JSON.stringify(value));

export default {
  id: 'replay',
  route: '#/admin/replay',
  navKey: 'nav.replay',
  roles: ['admin'], // /api/replays is ADMIN_ONLY
  strings: {
    vi: { ...kitStrings.vi, ...thresholdStrings.vi, ...resultStrings.vi, ...STRINGS.vi },
    en: { ...kitStrings.en, ...thresholdStrings.en, ...resultStrings.en, ...STRINGS.en },
  },
  async render(root, { api, t, h, fmtTime, params, signal, toast }) {
    useStyles();
    const cameras = await api.get('/api/cameras', { signal });
    root.append(h('h1', {}, t('replay.title')), h('p', { class: 'muted' }, t('replay.intro')));
    if (!cameras.length) {
      root.append(h('p', { class: 'empty' }, t('replay.noCameras')));
      return undefined;
    }
    const now = () => Date.now() / 1000;
    const state = { camera: null, candidate: null, selected: null, span: 600, since: now() - 600, job: null, timer: null };

    const picker = h('select', { name: 'camera' }, cameras.map((c) => h('option', { value: c.id }, c.name || c.id)));
    picker.value = cameras.some((c) => c.id === params.get('camera')) ? params.get('camera') : cameras[0].id;
    const from = h('input', { type: 'datetime-local', name: 'from' });
    const span = h('select', { name: 'span' }, SPANS_S.map((s) => h('option', { value: s }, t(`replay.span.${s}`))));
    span.value = String(state.span);
    const run = h('button', { type: 'button', class: 'primary' }, t('replay.run'));
    const cancel = h('button', { type: 'button', hidden: true }, t('replay.cancel'));
    const progress = h('progress', { max: 1, value: 0, hidden: true });
    const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'replay-status' });
    const windowText = h('span', { class: 'muted' });
    const resultBox = h('div', { class: 'card replay-result', hidden: true, 'data-testid': 'replay-result' });
    const apply = h('button', { type: 'button', hidden: true }, t('replay.apply'));
    const rulesBox = h('div', { class: 'card' });
    const filtersBox = h('div', { class: 'card' });

    const editor = createEditor({
      h, t,
      onDrawn() {}, // this page moves corners only: new shapes belong on the zones page
      onSelect(kind, index) {
        state.selected = { kind, index };
        editor.draw(state.candidate.zones, state.candidate.lines, state.selected);
      },
      onModeChange() {},
      onNotice: (key) => toast(t(key), 'error'),
    });

    function showWindow() {
      from.value = toLocalInput(state.since);
      windowText.textContent = t('replay.window', { from: fmtTime(state.since), to: fmtTime(state.since + state.span) });
    }

    function ruleRows() {
      const rules = state.candidate.rules;
      if (!rules.length) return h('p', { class: 'empty' }, t('replay.noRules'));
      return table([t('replay.col.rule'), t('replay.col.params')], rules.map((rule) => h('tr', { dataset: { rule: rule.name } },
        h('td', {}, rule.name, h('div', { class: 'hint' }, t(`type.${rule.type}`))),
        h('td', {}, h('div', { class: 'params' }, Object.keys(PARAMS).filter((k) => typeof rule[k] === 'number').map((key) => {
          const input = h('input', { type: 'number', name: `${rule.name}.${key}`, step: PARAMS[key], min: 0, value: rule[key] });
          input.addEventListener('input', () => { if (input.value.trim() !== '') rule[key] = Number(input.value); });
          return field(t(`replay.p.${key}`), input);
        }))))));
    }

    async function load() {
      state.camera = await editableCamera(api, picker.value, signal);
      const { zones, lines, filters, rules } = state.camera;
      state.candidate = copy({ zones, lines, filters: filters || {}, rules });
      state.selected = null;
      editor.setPicture(api.url(`/api/cameras/${encodeURIComponent(picker.value)}/snapshot.jpg`, { t: Date.now() }));
      editor.draw(state.candidate.zones, state.candidate.lines, null);
      rulesBox.replaceChildren(h('h2', {}, t('replay.rules')), ruleRows());
      filtersBox.replaceChildren(thresholdsTable({ h, t, filters: state.candidate.filters }));
    }

    function showJob(job) {
      state.job = job;
      const busy = job.status === 'queued' || job.status === 'running';
      run.disabled = busy;
      cancel.hidden = !busy;
      progress.hidden = !busy;
      progress.value = job.progress;
      const seconds = job.finished_ts && job.started_ts ? Math.round(job.finished_ts - job.started_ts) : 0;
      status.dataset.status = job.status;
      status.textContent = t(`replay.status.${job.status}`, {
        percent: Math.round(job.progress * 100), seconds, error: job.error || '',
      });
      if (job.status === 'done' && job.result) {
        resultBox.replaceChildren(...renderResult(job.result, job.camera_id, { h, t, fmtTime }));
        resultBox.hidden = false;
        apply.hidden = job.camera_id !== picker.value;
      }
    }

    async function poll(id) {
      state.timer = null;
      const job = await api.get(`/api/replays/${encodeURIComponent(id)}`, { signal });
      showJob(job);
      if (job.status === 'queued' || job.status === 'running') {
        state.timer = setTimeout(safely(() => poll(id)), POLL_MS);
      }
    }

    run.addEventListener('click', safely(async () => {
      resultBox.hidden = true;
      apply.hidden = true;
      const body = {
        camera_id: picker.value, since_ts: state.since, until_ts: state.since + state.span, candidate: state.candidate,
      };
      const job = await api.post('/api/replays', body, { signal });
      showJob(job);
      await poll(job.id);
    }), { signal });
    cancel.addEventListener('click', safely(async () => {
      if (state.job) showJob(await api.del(`/api/replays/${encodeURIComponent(state.job.id)}`, { signal }));
    }), { signal });
    apply.addEventListener('click', safely(async () => {
      // Fresh from the API, so settings edited elsewhere meanwhile (name, URL) are kept.
      const fresh = await editableCamera(api, picker.value, signal);
      await api.put(`/api/cameras/${encodeURIComponent(fresh.id)}`, { ...fresh, ...copy(state.candidate) }, { signal });
      const version = await latestVersion(api, signal);
      toast(t('kit.saved', { version: version ? version.id : '?' }));
      apply.hidden = true;
    }), { signal });
    from.addEventListener('change', () => {
      const ts = fromLocalInput(from.value);
      if (ts !== null) state.since = ts;
      showWindow();
    }, { signal });
    span.addEventListener('change', () => { state.span = Number(span.value); showWindow(); }, { signal });
    picker.addEventListener('change', safely(() => { resultBox.hidden = true; return load(); }), { signal });

    root.append(
      h('div', { class: 'toolbar' }, field(t('replay.camera'), picker), field(t('replay.from'), from),
        field(t('replay.span'), span),
        h('button', { type: 'button', onclick: () => { state.since = now() - state.span; showWindow(); } }, t('replay.endNow')),
        h('button', { type: 'button', onclick: safely(load) }, t('replay.reset')),
        run, cancel, windowText),
      h('div', { class: 'actions' }, progress, status, apply),
      resultBox,
      h('p', { class: 'muted' }, t('replay.zonesHint')),
      h('div', { class: 'replay-layout' }, editor.el, h('div', { class: 'side' }, rulesBox)),
      filtersBox);
    showWindow();
    await load();
    // A replay still running (started before the admin left this page) is picked up.
    const jobs = await api.get('/api/replays', { signal, quiet: true }).catch(() => []);
    if (jobs.length && (jobs[0].status === 'queued' || jobs[0].status === 'running')) await poll(jobs[0].id);
    return () => { if (state.timer) clearTimeout(state.timer); };
  },
};
