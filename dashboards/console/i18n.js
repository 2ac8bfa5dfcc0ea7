// Strings and time formatting. Vietnamese is the default (commune staff); English is
// a switch kept in localStorage. Pages bring their own strings (page.strings) and
// app.js merges them here with addStrings(), so t() covers the shell and every page.

const STORAGE_KEY = 'cv.lang';
export const LANGS = ['vi', 'en'];
// Cameras, incidents and shifts all run on Vietnam time, whatever the browser's zone.
export const TIME_ZONE = 'Asia/Ho_Chi_Minh';

// Shared vocabulary: shell, statuses, incident types, camera health, labels, false-alarm
// categories. Keys here may be used by any page.
const CORE = {
  vi: {
    'app.title': 'Trung tâm giám sát xã',
    'app.loading': 'Đang tải…',
    'app.notFound': 'Không có trang này.',
    'app.forbidden': 'Vai trò của bạn không được xem trang này.',
    'app.logout': 'Đăng xuất',
    'app.switchLang': 'English',
    'app.whoami': '{user} ({role})',
    'app.error': 'Lỗi: {message}',
    'app.none': 'Không có',
    'app.more': 'Xem thêm',
    'app.refresh': 'Làm mới',
    'role.viewer': 'người xem', 'role.operator': 'vận hành', 'role.police': 'công an', 'role.admin': 'quản trị',
    'status.new': 'Mới', 'status.acknowledged': 'Đã tiếp nhận', 'status.confirmed': 'Đã xác nhận',
    'status.false_alarm': 'Báo động giả', 'status.closed': 'Đã đóng',
    'type.intrusion': 'Xâm nhập', 'type.line_crossing': 'Vượt vạch', 'type.wrong_way': 'Đi ngược chiều',
    'type.loitering': 'Lảng vảng', 'type.illegal_parking': 'Đỗ xe sai quy định', 'type.crowding': 'Tụ tập đông người',
    'type.speeding': 'Quá tốc độ', 'type.tamper': 'Phá camera', 'type.camera_offline': 'Camera mất kết nối',
    'health.connecting': 'Đang kết nối', 'health.online': 'Trực tuyến', 'health.stalled': 'Đứng hình',
    'health.offline': 'Ngoại tuyến', 'health.auth_failed': 'Sai mật khẩu', 'health.not_found': 'Không tìm thấy',
    'health.error': 'Lỗi', 'health.unknown': 'Không rõ',
    'severity.low': 'Thấp', 'severity.medium': 'Trung bình', 'severity.high': 'Cao',
    'label.person': 'Người', 'label.bicycle': 'Xe đạp', 'label.motorbike': 'Xe máy', 'label.car': 'Ô tô',
    'label.bus': 'Xe buýt', 'label.truck': 'Xe tải',
    'category.shadow': 'Bóng đổ', 'category.animal': 'Động vật', 'category.weather': 'Thời tiết',
    'category.vehicle_misclassified': 'Nhận nhầm phương tiện', 'category.person_misclassified': 'Nhận nhầm người',
    'category.reflection': 'Phản chiếu', 'category.camera_moved': 'Camera bị xê dịch', 'category.other': 'Khác',
  },
  en: {
    'app.title': 'Commune operations center',
    'app.loading': 'Loading…',
    'app.notFound': 'No such page.',
    'app.forbidden': 'Your role may not see this page.',
    'app.logout': 'Sign out',
    'app.switchLang': 'Tiếng Việt',
    'app.whoami': '{user} ({role})',
    'app.error': 'Error: {message}',
    'app.none': 'None',
    'app.more': 'More',
    'app.refresh': 'Refresh',
    'role.viewer': 'viewer', 'role.operator': 'operator', 'role.police': 'police', 'role.admin': 'admin',
    'status.new': 'New', 'status.acknowledged': 'Acknowledged', 'status.confirmed': 'Confirmed',
    'status.false_alarm': 'False alarm', 'status.closed': 'Closed',
    'type.intrusion': 'Intrusion', 'type.line_crossing': 'Line crossing', 'type.wrong_way': 'Wrong way',
    'type.loitering': 'Loitering', 'type.illegal_parking': 'Illegal parking', 'type.crowding': 'Crowding',
    'type.speeding': 'Speeding', 'type.tamper': 'Tampering', 'type.camera_offline': 'Camera offline',
    'health.connecting': 'Connecting', 'health.online': 'Online', 'health.stalled': 'Stalled',
    'health.offline': 'Offline', 'health.auth_failed': 'Auth failed', 'health.not_found': 'Not found',
    'health.error': 'Error', 'health.unknown': 'Unknown',
    'severity.low': 'Low', 'severity.medium': 'Medium', 'severity.high': 'High',
    'label.person': 'Person', 'label.bicycle': 'Bicycle', 'label.motorbike': 'Motorbike', 'label.car': 'Car',
    'label.bus': 'Bus', 'label.truck': 'Truck',
    'category.shadow': 'Shadow', 'category.animal': 'Animal', 'category.weather': 'Weather',
    'category.vehicle_misclassified': 'Vehicle misclassified', 'category.person_misclassified': 'Person misclassified',
    'category.reflection': 'Reflection', 'category.camera_moved': 'Camera moved', 'category.other': 'Other',
  },
};

const dictionaries = { vi: { ...CORE.vi }, en: { ...CORE.en } };

export const coreStrings = CORE; // for the completeness test

function stored() {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return LANGS.includes(value) ? value : 'vi';
  } catch {
    return 'vi'; // storage disabled: default language
  }
}

let current = stored();

export function lang() {
  return current;
}

export function setLang(value) {
  if (!LANGS.includes(value)) return;
  current = value;
  try {
    localStorage.setItem(STORAGE_KEY, value);
  } catch {
    /* storage disabled: the switch lasts until reload */
  }
  document.documentElement.lang = value;
}

/** Merge a page's {vi: {...}, en: {...}}; later keys win. */
export function addStrings(strings) {
  for (const code of LANGS) Object.assign(dictionaries[code], (strings && strings[code]) || {});
}

/** t('search.count', {count: 3}): the current language, then Vietnamese, then the key
 * itself, so a missing string shows up visibly instead of as an empty label. */
export function t(key, params) {
  const text = dictionaries[current][key] ?? dictionaries.vi[key] ?? key;
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

const formatters = new Map();
function formatter(options) {
  const key = current + JSON.stringify(options);
  if (!formatters.has(key)) {
    const locale = current === 'vi' ? 'vi-VN' : 'en-GB';
    formatters.set(key, new Intl.DateTimeFormat(locale, { timeZone: TIME_ZONE, ...options }));
  }
  return formatters.get(key);
}

/** Epoch seconds (the API's *_ts) as Vietnam local time; '' for null. */
export function fmtTime(ts, options = { dateStyle: 'short', timeStyle: 'medium' }) {
  if (ts === null || ts === undefined) return '';
  return formatter(options).format(new Date(ts * 1000));
}

/** Parts of an epoch time in Vietnam, for <input type="datetime-local"> values. */
export function toLocalInput(ts) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone: TIME_ZONE, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
    }).formatToParts(new Date(ts * 1000)).map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/** '2026-03-01T08:30' read as Vietnam time (UTC+7, no daylight saving) → epoch seconds. */
export function fromLocalInput(value) {
  if (!value) return null;
  const ms = Date.parse(`${value}:00+07:00`);
  return Number.isNaN(ms) ? null : ms / 1000;
}

document.documentElement.lang = current;
