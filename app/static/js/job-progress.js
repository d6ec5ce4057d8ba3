// The live progress of a running job (templates/batch_ocr/_progress.html): the bar, the
// counts, the time left and the grid of pages, kept up to date by LiveStatus (live-status.js,
// loaded first). Used by every page that follows a job: batch OCR, exports.
//
//   JobProgress.follow(box, {
//     titleWord: 'OCR',         // the tab's title becomes "<titleWord> <percent>% · ..."
//     onUpdate: (s) => {},      // besides the progress shown, each answer while live
//     onEnd: (s) => {},         // the first answer that is not live (default: reload)
//   });
//
// `box` carries data-status-url, the job's status JSON.
(function () {
  'use strict';

  const IDS = ['done', 'failed', 'skipped', 'running', 'queued', 'preparing', 'state'];

  function eta(seconds) {
    if (seconds == null) return 'estimating time left…';
    return seconds >= 90 ? 'about ' + Math.round(seconds / 60) + ' min left'
      : 'about ' + seconds + ' s left';
  }

  function follow(box, options) {
    const opts = options || {};
    const grid = document.getElementById('grid');
    const title = document.title.split(' · ').slice(1).join(' · ');
    const byId = (id) => document.getElementById(id);

    function render(s) {
      byId('fill').style.width = s.percent + '%';
      byId('bar').setAttribute('aria-valuenow', s.percent);
      byId('percent').textContent = s.percent + '%';
      if (opts.titleWord) document.title = opts.titleWord + ' ' + s.percent + '% · ' + title;
      for (const id of IDS) byId(id).textContent = s[id];
      byId('preparing-part').hidden = !s.preparing;
      byId('finished').textContent = s.total - s.preparing - s.queued - s.running;
      byId('eta').textContent = eta(s.eta_seconds);
      const warning = byId('warning');
      if (warning) {
        warning.hidden = !s.warning;
        warning.textContent = s.warning || '';
      }
      if (!grid) return;
      const cells = grid.children;
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

    return LiveStatus.follow(box.dataset.statusUrl, {
      onUpdate: (s) => { render(s); if (opts.onUpdate) opts.onUpdate(s); },
      onEnd: (s) => { if (opts.onEnd) opts.onEnd(s); else window.location.reload(); },
      onLost: (message) => { byId('eta').textContent = message; },
    });
  }

  window.JobProgress = {follow};
})();
