// Security keys in the console (docs/security-keys.md). A form with `data-webauthn` ("create"
// or "get") and `data-begin` (URL) is driven here: on submit, its fields are posted to the
// begin URL (the CSRF field included), the answer's options go to the browser's WebAuthn API,
// and the key's answer is put in the form's `ceremony` and `credential` fields before the form
// is submitted to its own action, the finish URL. Binary fields travel as Base64url.
(function () {
  'use strict';

  function toBuffer(s) {
    var b64 = s.replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) { b64 += '='; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toBase64url(buf) {
    var bytes = new Uint8Array(buf);
    var bin = '';
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function decodeOptions(options) {
    var pk = options.publicKey;
    pk.challenge = toBuffer(pk.challenge);
    if (pk.user) { pk.user.id = toBuffer(pk.user.id); }
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuffer(c.id); });
    return { publicKey: pk };
  }

  function encodeCredential(c) {
    var r = c.response;
    var response = { clientDataJSON: toBase64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toBase64url(r.attestationObject);
      if (r.getTransports) { response.transports = r.getTransports(); }
    }
    if (r.authenticatorData) {
      response.authenticatorData = toBase64url(r.authenticatorData);
      response.signature = toBase64url(r.signature);
      response.userHandle = r.userHandle ? toBase64url(r.userHandle) : null;
    }
    return {
      id: c.id,
      rawId: toBase64url(c.rawId),
      type: c.type,
      response: response,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {}
    };
  }

  function showError(form, text) {
    var el = document.getElementById(form.getAttribute('data-error-id') || 'key-error');
    if (!el) { return; }
    el.textContent = text || form.getAttribute('data-error-text') || '';
    el.hidden = false;
  }

  function drive(form) {
    var mode = form.getAttribute('data-webauthn');
    var button = form.querySelector('button[type=submit]');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        showError(form, form.getAttribute('data-unsupported-text'));
        return;
      }
      if (button) { button.disabled = true; }
      var fields = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (key !== 'ceremony' && key !== 'credential') { fields.append(key, value); }
      });
      fetch(form.getAttribute('data-begin'), {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: fields.toString()
      }).then(function (resp) {
        return resp.json().then(function (body) {
          if (!resp.ok) { throw new Error(body.error || ''); }
          return body;
        });
      }).then(function (begun) {
        var options = decodeOptions(begun.options);
        var call = mode === 'create'
          ? navigator.credentials.create(options)
          : navigator.credentials.get(options);
        return call.then(function (credential) {
          form.querySelector('input[name=ceremony]').value = begun.ceremony;
          form.querySelector('input[name=credential]').value =
            JSON.stringify(encodeCredential(credential));
          form.submit();
        });
      }).catch(function (err) {
        if (button) { button.disabled = false; }
        // For diagnosis (tests, support): what the browser said, not shown.
        form.setAttribute('data-failure', String(err && err.name) + ': ' + String(err && err.message));
        // Messages from this server are already translated; the browser's own (the user
        // cancelled, no key answered) are replaced by the page's sentence.
        showError(form, err && err.name === 'Error' ? err.message : '');
      });
    });
  }

  document.querySelectorAll('form[data-webauthn]').forEach(drive);
}());
