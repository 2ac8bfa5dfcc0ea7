// Review queue: incidents still waiting (new, acknowledged) on the left, the chosen
// one's card on the right. '#/review?id=X' opens X even when it is no longer in the
// queue (from the alert feed or search). The queue follows the alert socket through
// a plain refresh every few seconds: a list of at most 100 is cheap to re-read.
import { renderCard } from './incident-card.js';

const QUEUE_MS = 5000;
const MEDIA = ['admin', 'operator', 'police'];

export default {
  id: 'review',
  route: '#/review',
  navKey: 'nav.review',
  roles: MEDIA, // the clip, notes and history need footage rights
  strings: {
    vi: {
      'nav.review': 'Xử lý sự việc',
      'review.title': 'Hàng chờ xử lý',
      'review.queueEmpty': 'Không có sự việc nào chờ xử lý.',
      'review.pick': 'Chọn một sự việc trong danh sách.',
      'review.snapshot': 'Ảnh chụp sự việc',
      'review.noSnapshot': 'Không có ảnh chụp.',
      'review.clipForbidden': 'Vai trò của bạn không được xem đoạn phim.',
      'review.clipNotReady': 'Đoạn phim chưa sẵn sàng, đang thử lại…',
      'review.camera': 'Camera', 'review.rule': 'Quy tắc', 'review.zone': 'Vùng', 'review.score': 'Độ tin cậy',
      'review.labels': 'Đối tượng', 'review.start': 'Bắt đầu', 'review.end': 'Kết thúc', 'review.ongoing': 'Đang diễn ra',
      'review.assignee': 'Người phụ trách', 'review.evidence': 'Lưu giữ bằng chứng',
      'review.locked': 'Đã khóa (không bị xóa)', 'review.unlocked': 'Chưa khóa', 'review.category': 'Loại báo động giả',
      'review.acknowledge': 'Tiếp nhận', 'review.confirm': 'Xác nhận', 'review.falseAlarm': 'Báo động giả',
      'review.close': 'Đóng', 'review.assign': 'Giao việc', 'review.assignMe': 'Giao cho tôi',
      'review.username': 'tên đăng nhập', 'review.lock': 'Khóa bằng chứng', 'review.unlock': 'Mở khóa bằng chứng',
      'review.export': 'Tải gói bằng chứng (.zip)', 'review.note': 'Ghi chú', 'review.notes': 'Ghi chú',
      'review.addNote': 'Thêm ghi chú', 'review.history': 'Lịch sử thao tác', 'review.noHistory': 'Chưa có thao tác nào.',
      'review.change': '{action}: {before} → {after}',
      'review.done': 'Đã chuyển sang: {status}', 'review.assigned': 'Đã giao việc.', 'review.noteAdded': 'Đã thêm ghi chú.',
      'review.lockedDone': 'Đã khóa bằng chứng.', 'review.unlockedDone': 'Đã mở khóa bằng chứng.',
    },
    en: {
      'nav.review': 'Review',
      'review.title': 'Review queue',
      'review.queueEmpty': 'Nothing waiting for review.',
      'review.pick': 'Pick an incident from the list.',
      'review.snapshot': 'Incident snapshot',
      'review.noSnapshot': 'No snapshot.',
      'review.clipForbidden': 'Your role may not watch footage.',
      'review.clipNotReady': 'Clip not ready yet, retrying…',
      'review.camera': 'Camera', 'review.rule': 'Rule', 'review.zone': 'Zone', 'review.score': 'Score',
      'review.labels': 'Objects', 'review.start': 'Started', 'review.end': 'Ended', 'review.ongoing': 'Ongoing',
      'review.assignee': 'Assignee', 'review.evidence': 'Evidence lock',
      'review.locked': 'Locked (kept)', 'review.unlocked': 'Not locked', 'review.category': 'False-alarm category',
      'review.acknowledge': 'Acknowledge', 'review.confirm': 'Confirm', 'review.falseAlarm': 'False alarm',
      'review.close': 'Close', 'review.assign': 'Assign', 'review.assignMe': 'Assign to me',
      'review.username': 'username', 'review.lock': 'Lock evidence', 'review.unlock': 'Unlock evidence',
      'review.export': 'Download evidence package (.zip)', 'review.note': 'Note', 'review.notes': 'Notes',
      'review.addNote': 'Add note', 'review.history': 'Audit trail', 'review.noHistory': 'No changes yet.',
      'review.change': '{action}: {before} → {after}',
      'review.done': 'Now: {status}', 'review.assigned': 'Assigned.', 'review.noteAdded': 'Note added.',
      'review.lockedDone': 'Evidence locked.', 'review.unlockedDone': 'Evidence unlocked.',
    },
  },
  async render(root, ctx) {
    const { api, t, h, clear, fmtTime, params, navigate, signal } = ctx;
    const queue = h('ol', { class: 'queue', 'data-testid': 'queue' });
    const detail = h('div', {}, h('p', { class: 'empty' }, t('review.pick')));
    root.append(h('h1', {}, t('review.title')), h('div', { class: 'review' }, queue, detail));
    let selected = params.get('id');

    async function loadQueue() {
      const page = await api.get('/api/incidents', {
        params: { status: ['new', 'acknowledged'], sort: 'newest', limit: 100 }, signal, quiet: true,
      });
      clear(queue, page.items.length ? page.items.map((i) => h('li', {},
        h('button', {
          type: 'button', class: i.id === selected ? 'selected' : null, dataset: { incident: i.id },
          onclick: () => navigate(`#/review?id=${encodeURIComponent(i.id)}`),
        },
        h('strong', {}, `${t(`type.${i.type}`)} · ${i.camera_id}`),
        h('span', { class: 'muted' }, `${fmtTime(i.start_ts)} · ${t(`status.${i.status}`)}`)))) :
        h('li', { class: 'empty' }, t('review.queueEmpty')));
    }

    if (selected) {
      const incident = await api.get(`/api/incidents/${encodeURIComponent(selected)}`, { signal });
      renderCard(detail, incident, ctx, () => loadQueue().catch(() => {}));
    }
    await loadQueue();
    const timer = setInterval(() => loadQueue().catch(() => {}), QUEUE_MS);
    return () => clearInterval(timer);
  },
};
