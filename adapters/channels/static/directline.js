// The Direct Line page: Bot Framework Web Chat against midtier's own Direct Line API.
// The page never holds the secret: it asks midtier's token endpoint (beside this page) for
// a token that opens one new conversation, as a company's own token server would.
(function () {
  'use strict';
  // Read while this script runs: Web Chat puts it on the <style> elements it creates.
  var nonce = document.currentScript && document.currentScript.nonce;
  var status = document.getElementById('status');

  function fail(text) {
    status.textContent = text;
  }

  async function start() {
    if (!window.WebChat) {
      fail('The chat is not available right now.');
      return;
    }
    var answer = await fetch('token', { method: 'POST', credentials: 'same-origin' });
    if (!answer.ok) {
      throw new Error('token endpoint answered ' + answer.status);
    }
    var token = (await answer.json()).token;
    var domain = new URL(document.body.dataset.directline, window.location.href).href;
    window.WebChat.renderWebChat(
      {
        directLine: window.WebChat.createDirectLine({ domain: domain, token: token }),
        nonce: nonce,
        locale: document.documentElement.lang || 'en',
        styleOptions: { hideUploadButton: true }
      },
      document.getElementById('webchat')
    );
  }

  start().catch(function () {
    fail('The chat could not start. Please reload the page.');
  });
})();
