// The page registry: every page module of the console, in nav order. See the page
// contract at the top of ../app.js. The login page is not here: the shell owns it.
import wall from './wall.js';
import alerts from './alerts.js';
import review from './review.js';
import search from './search.js';
import traffic from './traffic.js';
import footage from './footage.js';
import adminCameras from './admin-cameras.js';
import adminZones from './admin-zones.js';
import adminUsers from './admin-users.js';
import replay from './replay.js';

export default [wall, alerts, review, search, traffic, footage, adminCameras, adminZones, replay, adminUsers];
