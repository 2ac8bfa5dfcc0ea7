// Per-class detection thresholds (CameraConfig.filters: minimum confidence and box area
// per class), as a table with a slider per class. Shared by the zones page (saved as a
// config version) and the what-if replay page (tried on footage first).
import { table } from './kit.js';

export const LABELS = ['person', 'bicycle', 'motorbike', 'car', 'bus', 'truck']; // core.types.DomainLabel
export const DEFAULT_FILTER = { min_confidence: 0.25, min_area: 0 }; // core.config.ClassFilter

export const thresholdStrings = {
  vi: {
    'thr.title': 'Ngưỡng theo loại đối tượng',
    'thr.hint': 'Bỏ chọn để không lọc thêm (chỉ ngưỡng chung của bộ phát hiện, thường 0,25).',
    'thr.label': 'Loại', 'thr.custom': 'Riêng', 'thr.confidence': 'Độ tin cậy tối thiểu (0–1)',
    'thr.area': 'Diện tích tối thiểu (phần ảnh, 0–1)',
    'thr.slider': 'Thanh trượt độ tin cậy: {label}',
  },
  en: {
    'thr.title': 'Per-class thresholds',
    'thr.hint': "Untick for no extra filter (only the detector's own threshold, usually 0.25).",
    'thr.label': 'Class', 'thr.custom': 'Custom', 'thr.confidence': 'Minimum confidence (0–1)',
    'thr.area': 'Minimum area (share of the picture, 0–1)',
    'thr.slider': 'Confidence slider: {label}',
  },
};

/**
 * The thresholds of `filters` ({label: {min_confidence, min_area}}), edited in place:
 * a ticked class has its own entry, an unticked one none. onChange() after every edit,
 * slider moves included, so a preview can follow the thumb.
 */
export function thresholdsTable({ h, t, filters, onChange = () => {} }) {
  const rows = LABELS.map((label) => {
    const current = filters[label];
    const value = current || DEFAULT_FILTER;
    const custom = h('input', { type: 'checkbox', name: `custom-${label}`, checked: Boolean(current) });
    const confidence = h('input', {
      type: 'number', name: `min_confidence-${label}`, min: 0, max: 1, step: 0.05, value: value.min_confidence,
    });
    const slider = h('input', {
      type: 'range', name: `confidence-slider-${label}`, min: 0, max: 1, step: 0.01, value: value.min_confidence,
      'aria-label': t('thr.slider', { label: t(`label.${label}`) }),
    });
    const area = h('input', { type: 'number', name: `min_area-${label}`, min: 0, max: 1, step: 0.001, value: value.min_area });
    const store = () => {
      confidence.disabled = slider.disabled = area.disabled = !custom.checked;
      if (custom.checked) filters[label] = { min_confidence: Number(confidence.value), min_area: Number(area.value) };
      else delete filters[label];
    };
    store();
    custom.addEventListener('input', () => { store(); onChange(); });
    confidence.addEventListener('input', () => { slider.value = confidence.value; store(); onChange(); });
    slider.addEventListener('input', () => { confidence.value = slider.value; store(); onChange(); });
    area.addEventListener('input', () => { store(); onChange(); });
    return h('tr', { dataset: { label } }, h('td', {}, t(`label.${label}`)), h('td', {}, custom),
      h('td', {}, h('span', { class: 'confidence' }, slider, confidence)), h('td', {}, area));
  });
  return h('div', { class: 'thresholds' }, h('h2', {}, t('thr.title')), h('p', { class: 'muted' }, t('thr.hint')),
    table(['label', 'custom', 'confidence', 'area'].map((k) => t(`thr.${k}`)), rows));
}

/** What the pipeline does with a box (CameraAnalytics._filter): no entry, no extra filter. */
export function passes(filters, detection) {
  const limits = filters[detection.label];
  if (!limits) return true;
  const [x1, y1, x2, y2] = detection.box;
  return detection.confidence >= limits.min_confidence && (x2 - x1) * (y2 - y1) >= limits.min_area;
}
