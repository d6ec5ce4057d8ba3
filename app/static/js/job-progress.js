// The progress page of a running job, whatever its kind (templates/jobs/_progress.html):
// follows the job's status with LiveStatus and redraws the bar, counts, grid and reasons.
//
//   JobProgress.follow(document.getElementById('progress-live'), {
//     onUpdate: (s) => {},  // besides the redraw (a desktop notification)
//     onEnd: (s) => {},     // the job has ended (default: reload, to show its summary)
//   });
(function () {
  'use strict';

  const IDS = ['done', 'failed', 'skipped', 'running', 'queued', 'preparing', 'state'];

  function eta(seconds) {
    if (seconds == null) return 'estimating time left…';
    return seconds >= 90 ? 'about ' + Math.round(seconds / 60) + ' min left' : 'about ' + seconds + ' s left';
  }

  function render(box, s, title) {
    const byId = (id) => document.getElementById(id);
    byId('fill').style.width = s.percent + '%';
    byId('bar').setAttribute('aria-valuenow', s.percent);
    byId('percent').textContent = s.percent + '%';
    document.title = box.dataset.noun + ' ' + s.percent + '% · ' + title;
    for (const id of IDS) byId(id).textContent = s[id];
    byId('preparing-part').hidden = !s.preparing;
    byId('finished').textContent = s.total - s.preparing - s.queued - s.running;
    byId('eta').textContent = eta(s.eta_seconds);
    const warning = byId('warning');
    if (warning) {
      warning.hidden = !s.warning;
      warning.textContent = s.warning || '';
    }
    const cells = byId('grid').children;
    const reasons = [];
    s.pages.forEach((p, i) => {
      const cell = cells[i];
      if (!cell) return;
      cell.className = 'cell ' + p.state;
      cell.title = 'Page ' + p.number + ': ' + p.state + (p.reason ? ' — ' + p.reason : '');
      if (p.reason) reasons.push('Page ' + p.number + ' (' + p.state + '): ' + p.reason);
    });
    const list = byId('reasons');
    list.textContent = '';
    for (const r of reasons.slice(0, 20)) {
      const line = document.createElement('p');
      line.textContent = r;
      list.appendChild(line);
    }
  }

  function follow(box, handlers) {
    handlers = handlers || {};
    const title = document.title.split(' · ').slice(1).join(' · ');
    const onUpdate = handlers.onUpdate || (() => {});
    const onEnd = handlers.onEnd || (() => window.location.reload());
    LiveStatus.follow(box.dataset.statusUrl, {
      onUpdate: (s) => { render(box, s, title); onUpdate(s); },
      onEnd: onEnd,
      onLost: (message) => { document.getElementById('eta').textContent = message; },
    });
  }

  window.JobProgress = {follow: follow};
})();
