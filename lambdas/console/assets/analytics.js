/*
 * The analytics screen's charts (lambdas/console/pages/analytics.ts): reads the page's JSON block
 * (#analytics-data: x = day starts in epoch seconds, one series per value with `approval` in % and
 * `payments` per day) and draws each `[data-chart]` element with uPlot. The same numbers are in the
 * tables beside the charts, so nothing is lost without JavaScript.
 */
/* global document, window, uPlot */
(function () {
  'use strict';
  var block = document.getElementById('analytics-data');
  if (!block || typeof uPlot === 'undefined') return;
  var data = JSON.parse(block.textContent || '{}');
  var colors = ['#1f2937', '#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777'];
  var format = {
    approval: function (_u, v) {
      return v === null || v === undefined ? '—' : v.toFixed(1) + '%';
    },
    payments: function (_u, v) {
      return v === null || v === undefined ? '—' : String(v);
    },
  };
  var charts = [];
  document.querySelectorAll('[data-chart]').forEach(function (box) {
    var kind = box.getAttribute('data-chart');
    if (!format[kind]) return;
    var series = [{}].concat(
      data.series.map(function (s, i) {
        return {
          label: s.label,
          stroke: colors[i % colors.length],
          width: i === 0 ? 3 : 2,
          value: format[kind],
        };
      }),
    );
    var rows = [data.x].concat(
      data.series.map(function (s) {
        return s[kind];
      }),
    );
    var opts = {
      width: Math.max(320, box.clientWidth || 720),
      height: 280,
      series: series,
      scales: kind === 'approval' ? { y: { range: [0, 100] } } : {},
      axes: [
        {},
        {
          values: function (_u, ticks) {
            return ticks.map(function (t) {
              return kind === 'approval' ? t + '%' : String(t);
            });
          },
        },
      ],
    };
    charts.push({ box: box, plot: new uPlot(opts, rows, box) });
  });
  window.addEventListener('resize', function () {
    charts.forEach(function (c) {
      c.plot.setSize({ width: Math.max(320, c.box.clientWidth || 720), height: 280 });
    });
  });
})();
