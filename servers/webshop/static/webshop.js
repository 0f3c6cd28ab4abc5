// An option's radio button opens the item page with that option selected (its data-url).
// "click", not "change": choosing the option already selected reloads the page, as upstream.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll('input[type="radio"][data-url]').forEach(function (radio) {
    radio.addEventListener("click", function () { window.location.href = radio.dataset.url; });
  });
});
