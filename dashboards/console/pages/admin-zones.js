// Admin: zones, lines and per-class thresholds of one camera, drawn on its live picture.
// Saving PUTs the camera's whole config (fresh from the API, everything else unchanged)
// and shows the config version it became.
import { editableCamera, field, kitStrings, latestVersion, safely, table, useStyles } from './kit.js';
import { createEditor } from './zone-editor.js';

const LABELS = ['person', 'bicycle', 'motorbike', 'car', 'bus', 'truck']; // core.types.DomainLabel
const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/; // core.rule_config.ID_PATTERN
const DEFAULT_FILTER = { min_confidence: 0.25, min_area: 0 }; // core.config.ClassFilter

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
    'zones.filters': 'Ngưỡng theo loại đối tượng',
    'zones.filtersHint': 'Bỏ chọn để dùng ngưỡng mặc định (độ tin cậy 0,25; diện tích 0).',
    'zones.f.label': 'Loại', 'zones.f.custom': 'Riêng', 'zones.f.confidence': 'Độ tin cậy tối thiểu (0–1)',
    'zones.f.area': 'Diện tích tối thiểu (phần ảnh, 0–1)',
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
    'zones.filters': 'Per-class thresholds',
    'zones.filtersHint': 'Untick to use the defaults (confidence 0.25, area 0).',
    'zones.f.label': 'Class', 'zones.f.custom': 'Custom', 'zones.f.confidence': 'Minimum confidence (0–1)',
    'zones.f.area': 'Minimum area (share of the picture, 0–1)',
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
  strings: { vi: { ...kitStrings.vi, ...STRINGS.vi }, en: { ...kitStrings.en, ...STRINGS.en } },
  async render(root, { api, t, h, params, signal, toast }) {
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
        hint.textContent = t(mode ? `zones.hint.${mode}` : 'zones.hint.idle', { count });
        finishButton.disabled = !(mode === 'zone' && count >= 3);
        cancelButton.disabled = !mode;
      },
    });
    finishButton.addEventListener('click', () => editor.finish(), { signal });
    cancelButton.addEventListener('click', () => editor.cancel(), { signal });
    document.addEventListener('keydown', (event) => { if (event.key === 'Escape') editor.cancel(); }, { signal });

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
      lists.replaceChildren(
        h('div', { class: 'card' }, h('h2', {}, t('zones.zones')), shapeRows('zone', state.zones)),
        h('div', { class: 'card' }, h('h2', {}, t('zones.lines')), shapeRows('line', state.lines)));
    }

    function filterRows() {
      const rows = LABELS.map((label) => {
        const current = state.filters[label];
        const custom = h('input', { type: 'checkbox', name: `custom-${label}`, checked: Boolean(current) });
        const value = current || DEFAULT_FILTER;
        const confidence = h('input', { type: 'number', name: `min_confidence-${label}`, min: 0, max: 1, step: 0.05, value: value.min_confidence, disabled: !current });
        const area = h('input', { type: 'number', name: `min_area-${label}`, min: 0, max: 1, step: 0.001, value: value.min_area, disabled: !current });
        const sync = () => {
          confidence.disabled = area.disabled = !custom.checked;
          if (custom.checked) state.filters[label] = { min_confidence: Number(confidence.value), min_area: Number(area.value) };
          else delete state.filters[label];
        };
        for (const input of [custom, confidence, area]) input.addEventListener('input', sync);
        return h('tr', { dataset: { label } }, h('td', {}, t(`label.${label}`)), h('td', {}, custom), h('td', {}, confidence), h('td', {}, area));
      });
      filtersBox.replaceChildren(h('h2', {}, t('zones.filters')), h('p', { class: 'muted' }, t('zones.filtersHint')),
        table(['label', 'custom', 'confidence', 'area'].map((k) => t(`zones.f.${k}`)), rows));
    }

    async function load() {
      editor.cancel();
      state.camera = await editableCamera(api, picker.value, signal);
      // Copies: nothing changes until "save", and a reload discards unsaved drawing.
      state.zones = state.camera.zones.map((z) => ({ name: z.name, points: z.points.map((p) => [...p]) }));
      state.lines = state.camera.lines.map((l) => ({ name: l.name, points: l.points.map((p) => [...p]) }));
      state.filters = JSON.parse(JSON.stringify(state.camera.filters || {}));
      state.selected = null;
      editor.setPicture(api.url(`/api/cameras/${encodeURIComponent(picker.value)}/snapshot.jpg`, { t: Date.now() }));
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
        finishButton, cancelButton,
        h('button', { type: 'button', onclick: () => editor.setPicture(api.url(`/api/cameras/${encodeURIComponent(picker.value)}/snapshot.jpg`, { t: Date.now() })) }, t('zones.refreshPicture')),
        h('button', { type: 'button', class: 'primary', onclick: save }, t('zones.save'))),
      hint, status,
      h('div', { class: 'zones-layout' }, editor.el, h('div', { class: 'side' }, lists, filtersBox)));
    await load();
    return undefined;
  },
};
