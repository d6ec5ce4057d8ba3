// Live status for every page that follows a job or a split: one poller, used by all of them.
//
//   LiveStatus.follow(url, {
//     isLive: (s) => boolean,   // keep polling while this says so (default: queued/running)
//     onUpdate: (s) => {},      // each answer while live
//     onEnd: (s) => {},         // the first answer that is not live; polling stops
//     onLost: (message) => {},  // the server could not be reached, or refused: say so
//   });
//
// It stops for good at a terminal state, on a 4xx answer (the page is gone, or no longer
// ours to see) and when the session has expired (the answer is a redirect to sign in), so a
// poller never runs for ever. A network error or a 5xx (Redis down) is retried with backoff.
(function () {
  'use strict';

  const LIVE = new Set(['queued', 'running']);
  const FIRST_DELAY = 1000;
  const MAX_DELAY = 15000;

  function follow(url, handlers) {
    const isLive = handlers.isLive || ((s) => LIVE.has(s.state));
    const onUpdate = handlers.onUpdate || (() => {});
    const onEnd = handlers.onEnd || (() => {});
    const onLost = handlers.onLost || (() => {});
    let delay = FIRST_DELAY;
    let stopped = false;
    let timer = null;

    function stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    }

    async function poll() {
      if (stopped) return;
      let response;
      try {
        response = await fetch(url, {
          headers: {Accept: 'application/json'},
          cache: 'no-store',
          credentials: 'same-origin',
          redirect: 'manual',
        });
      } catch (e) {
        return retry('lost contact with the server; retrying…');
      }
      // A redirect (the sign-in page) comes back opaque with redirect: 'manual'.
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        stop();
        onLost('your session has ended: sign in again to follow this job');
        return;
      }
      if (response.status >= 400 && response.status < 500) {
        stop();
        onLost('this job can no longer be followed here (' + response.status + ')');
        return;
      }
      if (!response.ok) return retry('the server is unavailable (' + response.status + '); retrying…');
      let status;
      try {
        status = await response.json();
      } catch (e) {
        return retry('the server sent a broken answer; retrying…');
      }
      delay = FIRST_DELAY;
      if (isLive(status)) {
        onUpdate(status);
        timer = setTimeout(poll, delay);
      } else {
        stop();
        onEnd(status);
      }
    }

    function retry(message) {
      if (stopped) return;
      onLost(message);
      delay = Math.min(MAX_DELAY, delay * 2);
      timer = setTimeout(poll, delay);
    }

    timer = setTimeout(poll, delay);
    return {stop};
  }

  window.LiveStatus = {follow};
})();
