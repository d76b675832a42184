// paystep ops console: draws the charts the pages declare (no inline scripts: the Content-Security-Policy
// allows scripts from the console only). A chart is
//   <figure class="chart" data-chart="{&quot;x&quot;:[…epoch s…],&quot;series&quot;:[{&quot;label&quot;:…,&quot;values&quot;:[…]}]}">
// (lambdas/console/layout.ts lineChart); every number it draws is also in a table on the page.
/* global document, uPlot */
(function () {
  'use strict';
  var COLOURS = ['#1f4fd1', '#17663a', '#b3261e', '#8a4b00', '#6a1b9a', '#00695c'];
  function draw(root) {
    if (typeof uPlot === 'undefined') return;
    var figures = (root || document).querySelectorAll('figure.chart[data-chart]:not([data-drawn])');
    for (var i = 0; i < figures.length; i++) {
      var fig = figures[i];
      var spec;
      try {
        spec = JSON.parse(fig.getAttribute('data-chart'));
      } catch {
        continue;
      }
      fig.setAttribute('data-drawn', '1');
      var series = [{}];
      var data = [spec.x];
      for (var s = 0; s < spec.series.length; s++) {
        series.push({ label: spec.series[s].label, stroke: COLOURS[s % COLOURS.length], width: 2 });
        data.push(spec.series[s].values);
      }
      var width = Math.max(300, Math.min(fig.clientWidth - 16, 1100));
      new uPlot(
        {
          width: width,
          height: spec.height || 220,
          series: series,
          axes: [{}, {}],
          // Times in UTC, as the tables beside the charts show them.
          tzDate: function (ts) {
            return uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');
          },
        },
        data,
        fig,
      );
    }
  }
  document.addEventListener('DOMContentLoaded', function () {
    draw(document);
  });
  document.addEventListener('htmx:afterSwap', function (e) {
    draw(e.target);
  });
})();
