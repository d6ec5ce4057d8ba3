/*
 * Desktop notifications for a job's end, for a progress page left open in another tab.
 *
 * The page's live-status script calls DesktopNotify.update(status) with every status it reads
 * (the JSON of .../status: state, done, failed, skipped, total, task_id, project), or
 * DesktopNotify.jobEnded(status) once with the final one. A notification is shown only once the
 * user has allowed them, only for a job this page saw running (a page opened on a job already
 * over says nothing), and once per job however often it is called.
 *
 * Browsers let a page ask for the permission only from a click: a button marked
 * `data-desktop-notify` is shown while the choice is still open, and asks when clicked.
 */
(function () {
  'use strict';

  var TERMINAL = ['succeeded', 'partially_failed', 'failed', 'cancelled', 'interrupted'];
  var LABELS = {
    succeeded: 'finished',
    partially_failed: 'finished with failed pages',
    failed: 'failed',
    cancelled: 'was cancelled',
    interrupted: 'was interrupted'
  };
  var sawRunning = {};
  var told = {};

  function supported() {
    return typeof window.Notification === 'function';
  }

  function allowed() {
    return supported() && window.Notification.permission === 'granted';
  }

  function key(status) {
    return status.task_id || 'job';
  }

  function describe(status) {
    var what = status.project ? 'The job of ' + status.project : 'The job';
    var title = what + ' ' + (LABELS[status.state] || status.state);
    var body = (status.done || 0) + ' of ' + (status.total || 0) + ' pages done';
    if (status.failed) { body += ', ' + status.failed + ' failed'; }
    if (status.skipped) { body += ', ' + status.skipped + ' skipped'; }
    return {title: title, body: body + '.'};
  }

  /* Show the notification of this final status, once per job. True if one was shown. */
  function jobEnded(status) {
    if (!status || TERMINAL.indexOf(status.state) < 0 || told[key(status)] || !allowed()) {
      return false;
    }
    told[key(status)] = true;
    var text = describe(status);
    try {
      var shown = new window.Notification(text.title, {body: text.body, tag: 'job-' + key(status)});
      shown.onclick = function () { window.focus(); shown.close(); };
    } catch (e) {
      return false; /* e.g. a browser that wants a service worker for notifications */
    }
    return true;
  }

  /* Follow the job: a status that is not over marks it running; the first one over notifies. */
  function update(status) {
    if (!status || !status.state) { return false; }
    if (TERMINAL.indexOf(status.state) < 0) {
      sawRunning[key(status)] = true;
      return false;
    }
    return sawRunning[key(status)] ? jobEnded(status) : false;
  }

  function showButtons() {
    var buttons = document.querySelectorAll('[data-desktop-notify]');
    for (var i = 0; i < buttons.length; i++) {
      var button = buttons[i];
      button.hidden = !supported() || window.Notification.permission !== 'default';
      if (!button.dataset.bound) {
        button.dataset.bound = '1';
        button.addEventListener('click', function () {
          var asked = window.Notification.requestPermission(showButtons);
          if (asked && typeof asked.then === 'function') { asked.then(showButtons); }
        });
      }
    }
  }

  window.DesktopNotify = {update: update, jobEnded: jobEnded, allowed: allowed};
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', showButtons);
  } else {
    showButtons();
  }
})();
