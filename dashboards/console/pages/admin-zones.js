// Admin: zones, lines and per-class thresholds of one camera, drawn on its live picture.
// Corners are dragged and deleted on the picture (zone-editor.js); the thresholds show
// their effect on the camera's live detections before saving (detection-preview.js).
// Saving PUTs the camera's whole config (fresh from the API, everything else unchanged)
// and shows the config version it became.
import { createPreview, previewStrings } from './detection-preview.js';
import { editableCamera, field, kitStrings, latestVersion, safely, useStyles } from './kit.js';
import { thresholdStrings, thresholdsTable } from './thresholds.js';
import { createEditor } from './zone-editor.js';

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/; // core.rule_config.ID_PATTERN

const STRINGS = {
  vi: {
    'nav.adminZones': 'Vùng & vạch',
    'zones.title': 'Vùng, vạch và ngưỡng phát hiện',
    'zones.camera': 'Camera',
    'zones.drawZone': 'Vẽ vùng',
    'zones.drawLine': 'Vẽ vạch',
    'zones.finish': 'Xong vùng',
    'zones.cancelDraw': 'Hủy vẽ',
    'zones.refreshPicture': 'Tải lại hình',
    'zones.save': 'Lưu cấu hình',
    'zones.hint.idle': 'Chọn "Vẽ vùng" hoặc "Vẽ vạch", rồi bấm lên hình.',
    'zones.hint.zone': 'Bấm để thêm góc ({count} góc). Bấm đúp hoặc bấm lại góc đầu để đóng vùng (ít nhất 3 góc). Esc để hủy.',
    'zones.hint.line': 'Bấm điểm A rồi điểm B. Đi từ A sang B, vượt vạch từ trái sang phải là chiều "vào".',
    'zones.noPicture': 'Chưa có hình trực tiếp: vẽ trên khung trống 16:9.',
    'zones.zones': 'Vùng',
    'zones.lines': 'Vạch',
    'zones.none': 'Chưa có.',
    'zones.name': 'Tên',
    'zones.points': '{count} điểm',
    'zones.delete': 'Xóa',
    'zones.usedBy': 'Quy tắc đang dùng: {rules} (đổi tên/xóa quy tắc trước)',
    'zones.badName': 'Tên "{name}" không hợp lệ: chỉ chữ thường không dấu, số, - và _, bắt đầu bằng chữ hoặc số.',
    'zones.duplicate': 'Tên "{name}" bị trùng: mỗi vùng/vạch cần một tên riêng.',
    'zones.hint.edit': 'Kéo các góc của hình đang chọn để sửa; kéo chấm nhỏ giữa cạnh để thêm góc. Bấm chuột phải (hoặc chọn góc rồi bấm "Xóa góc"/phím Delete) để xóa góc.',
    'zones.deleteCorner': 'Xóa góc',
    'zones.pickCorner': 'Chọn một góc của hình đang chọn trước (bấm vào chấm tròn).',
    'zones.minCorners': 'Vùng cần ít nhất 3 góc: không xóa được thêm.',
    'zones.lineCorners': 'Vạch luôn có đúng 2 điểm: hãy kéo điểm thay vì xóa.',
    'zones.noCameras': 'Chưa có camera nào.',
    'zones.in': 'vào',
  },
  en: {
    'nav.adminZones': 'Zones & lines',
    'zones.title': 'Zones, lines and detection thresholds',
    'zones.camera': 'Camera',
    'zones.drawZone': 'Draw zone',
    'zones.drawLine': 'Draw line',
    'zones.finish': 'Finish zone',
    'zones.cancelDraw': 'Cancel drawing',
    'zones.refreshPicture': 'Reload picture',
    'zones.save': 'Save config',
    'zones.hint.idle': 'Choose "Draw zone" or "Draw line", then click on the picture.',
    'zones.hint.zone': 'Click to add corners ({count} so far). Double-click or click the first corner to close (3 or more). Esc cancels.',
    'zones.hint.line': 'Click point A, then point B. Walking from A to B, crossing left-to-right is "in".',
    'zones.noPicture': 'No live picture: drawing on a blank 16:9 frame.',
    'zones.zones': 'Zones',
    'zones.lines': 'Lines',
    'zones.none': 'None yet.',
    'zones.name': 'Name',
    'zones.points': '{count} points',
    'zones.delete': 'Delete',
    'zones.usedBy': 'Used by rules: {rules} (rename or remove those first)',
    'zones.badName': 'Name "{name}" is not valid: use lowercase letters without accents, digits, - and _, starting with a letter or digit.',
    'zones.duplicate': 'Name "{name}" is used twice: each zone and line needs its own name.',
    'zones.hint.edit': 'Drag the corners of the selected shape to move them; drag the small dot in the middle of an edge to add a corner. Right-click a corner (or pick it, then "Delete corner" or the Delete key) to remove it.',
    'zones.deleteCorner': 'Delete corner',
    'zones.pickCorner': 'Pick a corner of the selected shape first (click its round handle).',
    'zones.minCorners': 'A zone needs at least 3 corners: none can be removed.',
    'zones.lineCorners': 'A line always has exactly 2 points: drag one instead.',
    'zones.noCameras': 'No cameras yet.',
    'zones.in': 'in',
  },
};

/** A name not used yet: zone-1, zone-2, … */
function freshName(prefix, taken) {
  for (let i = 1; ; i += 1) if (!taken.includes(`${prefix}-${i}`)) return `${prefix}-${i}`;
}

export default {
  id: 'admin-zones',
  route: '#/admin/zones',
  navKey: 'nav.adminZones',
  roles: ['admin'],
  strings: {
    vi: { ...kitStrings.vi, ...thresholdStrings.vi, ...previewStrings.vi, ...STRINGS.vi },
    en: { ...kitStrings.en, ...thresholdStrings.en, ...previewStrings.en, ...STRINGS.en },
  },
  async render(root, { api, t, h, fmtTime, params, signal, toast }) {
    useStyles();
    const cameras = await api.get('/api/cameras', { signal });
    root.append(h('h1', {}, t('zones.title')));
    if (!cameras.length) {
      root.append(h('p', { class: 'empty' }, t('zones.noCameras')));
      return undefined;
    }
    const state = { camera: null, zones: [], lines: [], filters: {}, selected: null };
    const picker = h('select', { name: 'camera' }, cameras.map((c) => h('option', { value: c.id }, c.name || c.id)));
    picker.value = cameras.some((c) => c.id === params.get('camera')) ? params.get('camera') : cameras[0].id;
    const hint = h('p', { class: 'muted', 'data-testid': 'zones-hint' }, t('zones.hint.idle'));
    const finishButton = h('button', { type: 'button', disabled: true }, t('zones.finish'));
    const cancelButton = h('button', { type: 'button', disabled: true }, t('zones.cancelDraw'));
    const cornerButton = h('button', { type: 'button', 'data-testid': 'delete-corner' }, t('zones.deleteCorner'));
    const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'zones-status' });
    const lists = h('div', { class: 'shape-lists' });
    const filtersBox = h('div', { class: 'card' });

    const editor = createEditor({
      h, t,
      onDrawn(kind, points) {
        const list = kind === 'zone' ? state.zones : state.lines;
        const taken = [...state.zones, ...state.lines].map((s) => s.name);
        list.push({ name: freshName(kind, taken), points });
        state.selected = { kind, index: list.length - 1 };
        repaint();
        const input = lists.querySelector(`[data-kind="${kind}"][data-index="${list.length - 1}"] input`);
        if (input) { input.focus(); input.select(); }
      },
      onSelect(kind, index) {
        state.selected = { kind, index };
        repaint();
      },
      onModeChange(mode, count) {
        hint.textContent = t(mode ? `zones.hint.${mode}` : idleHint(), { count });
        finishButton.disabled = !(mode === 'zone' && count >= 3);
        cancelButton.disabled = !mode;
      },
      onEdit() {
        status.textContent = '';
        repaint(); // the lists show the new corner counts; the preview recounts zones
      },
      onNotice(key) {
        toast(t(key), 'error');
      },
      underlay: (size) => preview.underlay(size),
    });
    const snapshotUrl = () => api.url(`/api/cameras/${encodeURIComponent(picker.value)}/snapshot.jpg`, { t: Date.now() });
    const preview = createPreview({
      api, t, h, fmtTime, signal,
      filters: () => state.filters,
      zones: () => state.zones,
      onPicture: (src) => editor.setPicture(src || snapshotUrl()),
      repaint: () => editor.repaint(),
    });
    const idleHint = () => (state.selected ? 'zones.hint.edit' : 'zones.hint.idle');
    cornerButton.addEventListener('click', () => editor.deleteCorner(), { signal });
    finishButton.addEventListener('click', () => editor.finish(), { signal });
    cancelButton.addEventListener('click', () => editor.cancel(), { signal });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') editor.cancel();
      // Delete removes the picked corner, unless the admin is typing in a field.
      const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(event.target.tagName);
      if ((event.key === 'Delete' || event.key === 'Backspace') && !typing && editor.corner()) {
        event.preventDefault();
        editor.deleteCorner();
      }
    }, { signal });

    const usedBy = (kind, name) => (state.camera.rules || [])
      .filter((r) => r[kind] === name).map((r) => r.name);

    function shapeRows(kind, list) {
      if (!list.length) return h('p', { class: 'empty' }, t('zones.none'));
      return h('ul', { class: 'shapes' }, list.map((shape, index) => {
        const rules = usedBy(kind, shape.name);
        const selected = state.selected && state.selected.kind === kind && state.selected.index === index;
        const name = h('input', { value: shape.name, 'aria-label': t('zones.name'), pattern: NAME.source, disabled: rules.length > 0 });
        name.addEventListener('input', () => { shape.name = name.value.trim(); editor.draw(state.zones, state.lines, state.selected); });
        name.addEventListener('focus', () => { state.selected = { kind, index }; editor.draw(state.zones, state.lines, state.selected); });
        const remove = h('button', { type: 'button', class: 'danger', disabled: rules.length > 0, onclick: () => {
          list.splice(index, 1);
          state.selected = null;
          repaint();
        } }, t('zones.delete'));
        return h('li', { class: selected ? 'selected' : null, dataset: { kind, index } },
          name, h('span', { class: 'muted' }, t('zones.points', { count: shape.points.length })), remove,
          rules.length ? h('span', { class: 'hint' }, t('zones.usedBy', { rules: rules.join(', ') })) : null);
      }));
    }

    function repaint() {
      editor.draw(state.zones, state.lines, state.selected);
      if (!editor.drawing()) hint.textContent = t(idleHint());
      preview.refresh();
      lists.replaceChildren(
        h('div', { class: 'card' }, h('h2', {}, t('zones.zones')), shapeRows('zone', state.zones)),
        h('div', { class: 'card' }, h('h2', {}, t('zones.lines')), shapeRows('line', state.lines)));
    }

    function filterRows() {
      filtersBox.replaceChildren(thresholdsTable({ h, t, filters: state.filters, onChange: () => preview.refresh() }));
    }

    async function load() {
      editor.cancel();
      state.camera = await editableCamera(api, picker.value, signal);
      // Copies: nothing changes until "save", and a reload discards unsaved drawing.
      state.zones = state.camera.zones.map((z) => ({ name: z.name, points: z.points.map((p) => [...p]) }));
      state.lines = state.camera.lines.map((l) => ({ name: l.name, points: l.points.map((p) => [...p]) }));
      state.filters = JSON.parse(JSON.stringify(state.camera.filters || {}));
      state.selected = null;
      editor.setPicture(snapshotUrl());
      preview.setCamera(picker.value);
      repaint();
      filterRows();
    }

    function problems() {
      const names = [...state.zones, ...state.lines].map((s) => s.name);
      const bad = names.find((n) => !NAME.test(n));
      if (bad !== undefined) return t('zones.badName', { name: bad });
      const twice = names.find((n, i) => names.indexOf(n) !== i);
      return twice === undefined ? null : t('zones.duplicate', { name: twice });
    }

    const save = safely(async () => {
      const problem = problems();
      if (problem) {
        toast(problem, 'error');
        return;
      }
      // Fresh from the API, so settings edited elsewhere meanwhile (name, URL, rules) are kept.
      const fresh = await editableCamera(api, state.camera.id, signal);
      const body = { ...fresh, zones: state.zones, lines: state.lines, filters: state.filters };
      await api.put(`/api/cameras/${encodeURIComponent(fresh.id)}`, body, { signal });
      const version = await latestVersion(api, signal);
      status.textContent = t('kit.saved', { version: version ? version.id : '?' });
      toast(status.textContent);
      state.camera = { ...fresh, ...body };
      repaint();
    });

    picker.addEventListener('change', safely(() => { status.textContent = ''; return load(); }), { signal });
    root.append(
      h('div', { class: 'toolbar' }, field(t('zones.camera'), picker),
        h('button', { type: 'button', onclick: () => editor.start('zone') }, t('zones.drawZone')),
        h('button', { type: 'button', onclick: () => editor.start('line') }, t('zones.drawLine')),
        finishButton, cancelButton, cornerButton,
        h('button', { type: 'button', onclick: () => editor.setPicture(snapshotUrl()) }, t('zones.refreshPicture')),
        h('button', { type: 'button', class: 'primary', onclick: save }, t('zones.save'))),
      hint, status,
      h('div', { class: 'zones-layout' }, editor.el, h('div', { class: 'side' }, lists)),
      h('div', { class: 'tuning-layout' }, filtersBox, preview.el));
    await load();
    return undefined;
  },
};
