// The Jupyter widgets HTML manager (embed-amd.js) loads its icon fonts from the folder require.js says it
// lives in; unconfigured, that is the page's own folder, where they are not (404s on every page with a
// widget icon). Point require.js at the copy in _static/vendor/ before the manager loads.
(function () {
  var src = document.currentScript && document.currentScript.src;
  if (!src || !window.require || !window.require.config) return;
  var base = src.slice(0, src.lastIndexOf('/') + 1);
  window.require.config({paths: {'@jupyter-widgets/html-manager/dist': base + 'vendor/html-manager/dist'}});
})();
