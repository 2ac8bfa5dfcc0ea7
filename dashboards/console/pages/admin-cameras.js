// Admin: cameras. List, add, edit, delete, and test a stream before saving it.
// Every save is a new config version (GET /api/config/versions); its number is shown.
import {
  confirmButton, editableCamera, field, kitStrings, latestVersion, numberOrNull, safely, table, useStyles,
} from './kit.js';

const STRINGS = {
  vi: {
    'nav.adminCameras': 'Camera',
    'cams.title': 'Quản lý camera',
    'cams.add': 'Thêm camera',
    'cams.edit': 'Sửa',
    'cams.delete': 'Xóa',
    'cams.zones': 'Vùng & vạch',
    'cams.confirmDelete': 'Xóa camera {id}? Video đã ghi vẫn được giữ theo thời hạn lưu.',
    'cams.deleted': 'Đã xóa camera {id} (cấu hình phiên bản {version})',
    'cams.col.id': 'Mã', 'cams.col.name': 'Tên', 'cams.col.url': 'Địa chỉ luồng', 'cams.col.state': 'Trạng thái',
    'cams.col.fps': 'Khung/giây phân tích', 'cams.col.record': 'Ghi hình', 'cams.col.actions': '',
    'cams.record.on': 'Bật ({mode})', 'cams.record.off': 'Tắt',
    'cams.mode.continuous': 'liên tục', 'cams.mode.events': 'theo sự kiện',
    'cams.formAdd': 'Thêm camera mới', 'cams.formEdit': 'Sửa camera {id}',
    'cams.f.id': 'Mã camera (chữ thường, số, - _)', 'cams.f.name': 'Tên hiển thị',
    'cams.f.url': 'Địa chỉ luồng phân tích (rtsp://…)', 'cams.f.recordUrl': 'Luồng ghi hình chính (không bắt buộc)',
    'cams.f.urlHint': 'Mật khẩu hiện là *** : để nguyên thì giữ mật khẩu đã lưu.',
    'cams.f.transport': 'Giao thức RTSP', 'cams.f.enabled': 'Đang dùng',
    'cams.f.fps': 'Khung/giây gửi phân tích', 'cams.f.width': 'Chiều rộng khung phân tích (px)',
    'cams.f.recEnabled': 'Ghi hình', 'cams.f.recMode': 'Chế độ ghi', 'cams.f.segment': 'Độ dài đoạn (giây)',
    'cams.f.retain': 'Giữ video (ngày)', 'cams.f.maxGb': 'Dung lượng tối đa (GB, để trống = không giới hạn)',
    'cams.test': 'Kiểm tra kết nối', 'cams.testing': 'Đang kiểm tra…',
    'cams.testOk': 'Kết nối được: {codec} {width}×{height}, {fps} khung/giây ({elapsed} giây)',
    'cams.testFail': 'Không kết nối được ({state}): {error}',
    'cams.save': 'Lưu', 'cams.cancel': 'Hủy',
    'cams.none': 'Chưa có camera nào. Bấm "Thêm camera".',
  },
  en: {
    'nav.adminCameras': 'Cameras',
    'cams.title': 'Cameras',
    'cams.add': 'Add camera',
    'cams.edit': 'Edit',
    'cams.delete': 'Delete',
    'cams.zones': 'Zones & lines',
    'cams.confirmDelete': 'Delete camera {id}? Its recordings are kept until they expire.',
    'cams.deleted': 'Camera {id} deleted (config version {version})',
    'cams.col.id': 'ID', 'cams.col.name': 'Name', 'cams.col.url': 'Stream URL', 'cams.col.state': 'State',
    'cams.col.fps': 'Detect fps', 'cams.col.record': 'Recording', 'cams.col.actions': '',
    'cams.record.on': 'On ({mode})', 'cams.record.off': 'Off',
    'cams.mode.continuous': 'continuous', 'cams.mode.events': 'events only',
    'cams.formAdd': 'New camera', 'cams.formEdit': 'Edit camera {id}',
    'cams.f.id': 'Camera ID (lowercase letters, digits, - _)', 'cams.f.name': 'Display name',
    'cams.f.url': 'Detect stream URL (rtsp://…)', 'cams.f.recordUrl': 'Main stream to record (optional)',
    'cams.f.urlHint': 'The password shows as ***: leave it so to keep the stored one.',
    'cams.f.transport': 'RTSP transport', 'cams.f.enabled': 'Enabled',
    'cams.f.fps': 'Frames per second to detect', 'cams.f.width': 'Detect frame width (px)',
    'cams.f.recEnabled': 'Record', 'cams.f.recMode': 'Recording mode', 'cams.f.segment': 'Segment length (s)',
    'cams.f.retain': 'Keep footage (days)', 'cams.f.maxGb': 'Size quota (GB, empty = none)',
    'cams.test': 'Test connection', 'cams.testing': 'Testing…',
    'cams.testOk': 'Connected: {codec} {width}×{height}, {fps} fps ({elapsed} s)',
    'cams.testFail': 'Cannot connect ({state}): {error}',
    'cams.save': 'Save', 'cams.cancel': 'Cancel',
    'cams.none': 'No cameras yet. Click "Add camera".',
  },
};

/** The form's controls, filled from `camera` (null: defaults for a new one). */
function controls(h, t, camera) {
  const c = camera || { detect: { fps: 5, width: 640 }, record: { enabled: true, mode: 'continuous', segment_s: 10, retain_days: 7 } };
  const num = (name, value, min, max, stepAttr = 'any') => h('input', { type: 'number', name, value: value ?? '', min, max, step: stepAttr });
  const select = (name, options, value) => h('select', { name },
    options.map(([v, label]) => h('option', { value: v, selected: v === value ? 'selected' : null }, label)));
  return {
    id: h('input', { name: 'id', value: c.id || '', required: true, pattern: '[a-z0-9][a-z0-9_-]{0,63}', disabled: Boolean(camera) }),
    name: h('input', { name: 'name', value: c.name || '' }),
    url: h('input', { name: 'url', value: c.url || '', required: true, size: 48 }),
    record_url: h('input', { name: 'record_url', value: c.record_url || '', size: 48 }),
    transport: select('transport', [['tcp', 'TCP'], ['udp', 'UDP']], c.transport || 'tcp'),
    enabled: h('input', { type: 'checkbox', name: 'enabled', checked: c.enabled !== false }),
    fps: num('fps', c.detect.fps, 0.1, 30),
    width: num('width', c.detect.width, 64, 3840, 1),
    recEnabled: h('input', { type: 'checkbox', name: 'record_enabled', checked: c.record.enabled !== false }),
    recMode: select('record_mode', ['continuous', 'events'].map((m) => [m, t(`cams.mode.${m}`)]), c.record.mode),
    segment: num('segment_s', c.record.segment_s, 2, 300),
    retain: num('retain_days', c.record.retain_days, 0.01, 3650),
    maxGb: num('max_gb', c.record.max_gb, 0.001, null),
  };
}

/** The camera to send: `base` (the stored config, or {} for a new one) with the form's values. */
function fromForm(f, base) {
  return {
    ...base,
    id: base.id || f.id.value.trim(),
    name: f.name.value.trim(),
    url: f.url.value.trim(),
    record_url: f.record_url.value.trim() || null,
    transport: f.transport.value,
    enabled: f.enabled.checked,
    detect: { ...(base.detect || {}), fps: numberOrNull(f.fps), width: numberOrNull(f.width) },
    record: {
      ...(base.record || {}),
      enabled: f.recEnabled.checked,
      mode: f.recMode.value,
      segment_s: numberOrNull(f.segment),
      retain_days: numberOrNull(f.retain),
      max_gb: numberOrNull(f.maxGb),
    },
  };
}

export default {
  id: 'admin-cameras',
  route: '#/admin/cameras',
  navKey: 'nav.adminCameras',
  roles: ['admin'],
  strings: { vi: { ...kitStrings.vi, ...STRINGS.vi }, en: { ...kitStrings.en, ...STRINGS.en } },
  async render(root, { api, t, h, signal, toast, navigate }) {
    useStyles();
    const list = h('div', { 'data-testid': 'camera-list' });
    const editor = h('div', { class: 'card', hidden: true, 'data-testid': 'camera-form' });
    const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'camera-status' });
    root.append(
      h('div', { class: 'toolbar' }, h('h1', {}, t('cams.title')),
        h('button', { type: 'button', class: 'primary', onclick: () => openForm(null) }, t('cams.add'))),
      status, editor, list);

    async function saved(message) {
      const version = await latestVersion(api, signal);
      status.textContent = message(version ? version.id : '?');
      await refresh();
    }

    function openForm(camera) {
      const f = controls(h, t, camera);
      const result = h('p', { class: 'test-result', 'data-testid': 'test-result' });
      const testButton = h('button', { type: 'button' }, t('cams.test'));
      testButton.addEventListener('click', async () => {
        testButton.disabled = true;
        result.className = 'test-result';
        result.textContent = t('cams.testing');
        try {
          const r = await api.post('/api/cameras/test', {
            url: f.url.value.trim(), transport: f.transport.value, camera_id: camera ? camera.id : null,
          }, { signal });
          result.classList.add(r.ok ? 'ok' : 'bad');
          result.textContent = r.ok
            ? t('cams.testOk', { codec: (r.codec || '').toUpperCase(), width: r.width, height: r.height, fps: r.fps ?? '?', elapsed: r.elapsed_s.toFixed(1) })
            : t('cams.testFail', { state: t(`health.${r.state}`), error: r.error });
        } catch (err) {
          result.textContent = '';
        } finally {
          testButton.disabled = false;
        }
      }, { signal });
      const form = h('form', { class: 'form-grid' },
        field(t('cams.f.id'), f.id), field(t('cams.f.name'), f.name),
        field(t('cams.f.url'), f.url, camera ? t('cams.f.urlHint') : null), field(t('cams.f.recordUrl'), f.record_url),
        field(t('cams.f.transport'), f.transport), field(t('cams.f.enabled'), f.enabled),
        field(t('cams.f.fps'), f.fps), field(t('cams.f.width'), f.width),
        field(t('cams.f.recEnabled'), f.recEnabled), field(t('cams.f.recMode'), f.recMode),
        field(t('cams.f.segment'), f.segment), field(t('cams.f.retain'), f.retain), field(t('cams.f.maxGb'), f.maxGb),
        h('div', { class: 'actions wide' }, testButton,
          h('button', { type: 'submit', class: 'primary' }, t('cams.save')),
          h('button', { type: 'button', onclick: () => { editor.hidden = true; } }, t('cams.cancel'))),
        result);
      form.addEventListener('submit', (event) => event.preventDefault(), { signal });
      form.addEventListener('submit', safely(async () => {
        if (camera) {
          // Fresh from the API: settings this form does not show (zones, rules) stay as they are.
          const base = await editableCamera(api, camera.id, signal);
          await api.put(`/api/cameras/${encodeURIComponent(camera.id)}`, fromForm(f, base), { signal });
        } else {
          await api.post('/api/cameras', fromForm(f, {}), { signal });
        }
        editor.hidden = true;
        await saved((version) => t('kit.saved', { version }));
      }), { signal });
      editor.replaceChildren(h('h2', {}, camera ? t('cams.formEdit', { id: camera.id }) : t('cams.formAdd')), form);
      editor.hidden = false;
      (camera ? f.name : f.id).focus();
    }

    async function refresh() {
      const cameras = await api.get('/api/cameras', { signal });
      if (!cameras.length) {
        list.replaceChildren(h('p', { class: 'empty' }, t('cams.none')));
        return;
      }
      const rows = cameras.map((c) => {
        const state = c.health ? c.health.state : 'unknown';
        const record = c.record.enabled ? t('cams.record.on', { mode: t(`cams.mode.${c.record.mode}`) }) : t('cams.record.off');
        return h('tr', { dataset: { camera: c.id } },
          h('td', {}, c.id), h('td', {}, c.name), h('td', { class: 'mono' }, c.url),
          h('td', {}, h('span', { class: `badge ${state}` }, t(`health.${state}`))),
          h('td', {}, String(c.detect.fps)), h('td', {}, record),
          h('td', { class: 'row-actions' },
            h('button', { type: 'button', onclick: () => openForm(c) }, t('cams.edit')),
            h('button', { type: 'button', onclick: () => navigate(`#/admin/zones?camera=${encodeURIComponent(c.id)}`) }, t('cams.zones')),
            confirmButton(t, t('cams.delete'), t('cams.confirmDelete', { id: c.id }), async () => {
              await api.del(`/api/cameras/${encodeURIComponent(c.id)}`, { signal });
              await saved((version) => t('cams.deleted', { id: c.id, version }));
              toast(status.textContent);
            })));
      });
      list.replaceChildren(table(
        ['id', 'name', 'url', 'state', 'fps', 'record', 'actions'].map((k) => t(`cams.col.${k}`)), rows));
    }

    await refresh();
  },
};
