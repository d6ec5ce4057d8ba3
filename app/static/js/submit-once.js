// Forms marked data-submit-once send once: one click starts one job.
(function () {

  // One click starts one job: a button is disabled once its form is sent. A disabled button
  // sends no value, so a named one's value goes along in a hidden copy.
  const onceForms = document.querySelectorAll('form[data-submit-once]');
  onceForms.forEach((form) => form.addEventListener('submit', (e) => {
    const button = e.submitter;
    if (!button) return;
    button.disabled = true;
    button.dataset.sent = '1';
    if (button.name) {
      const copy = document.createElement('input');
      copy.type = 'hidden'; copy.name = button.name; copy.value = button.value; copy.dataset.sent = '1';
      form.appendChild(copy);
    }
  }));
  // Back from the progress page, the browser may show this page from its cache as it was left:
  // give the buttons back (only those disabled above, never one the server disabled).
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    onceForms.forEach((form) => {
      form.querySelectorAll('button[data-sent]').forEach((b) => { b.disabled = false; delete b.dataset.sent; });
      form.querySelectorAll('input[data-sent]').forEach((i) => i.remove());
    });
  });
})();
