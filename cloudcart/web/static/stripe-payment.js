// Cloudcart web: Stripe's Payment Element on the pay page (loaded only there, after
// https://js.stripe.com/v3/). The container carries the publishable key, the payment's
// client secret and where Stripe sends the customer back; card details go from Stripe's
// frames to Stripe, never through this shop.
(function () {
  "use strict";

  function show(message, text) {
    if (!message) return;
    message.textContent = text;
    message.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form[data-stripe-payment]");
    if (!form) return;
    var container = form.querySelector("[data-client-secret]");
    var message = form.querySelector("[data-payment-message]");
    var button = form.querySelector("button[type=submit]");
    if (!container || !button) return;
    if (typeof window.Stripe !== "function") {
      show(message, "The card form could not be loaded. Check your connection and reload the page.");
      return;
    }
    var stripe = window.Stripe(container.dataset.publishableKey);
    var elements = stripe.elements({ clientSecret: container.dataset.clientSecret });
    var payment = elements.create("payment");
    payment.mount(container);
    payment.on("ready", function () { button.disabled = false; });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      if (message) message.hidden = true;
      var returnUrl = new URL(container.dataset.returnUrl, window.location.href).href;
      stripe
        .confirmPayment({ elements: elements, confirmParams: { return_url: returnUrl } })
        .then(function (result) {
          // Only reached when Stripe did not redirect: the card was refused or a field
          // is incomplete. Stripe's message says which.
          if (result.error) show(message, result.error.message || "The payment did not go through.");
          button.disabled = false;
        });
    });
  });
})();
