"""What the book tests evaluate in each page (JavaScript run by Playwright), kept apart so that one page load
serves every check (conftest.visit).

``CHECK`` waits for MathJax, mermaid and plotly to finish and reports what did not render; ``MEASURE`` reads the
page as a reader at 1300 x 900 sees it (see test_book_reads.py for what each key means).
"""

CHECK = """async () => {
  const wait = (ms) => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 100 && window.MathJax && !(MathJax.startup && MathJax.startup.promise); i++) await wait(100);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const mermaids = Array.from(document.querySelectorAll('pre.mermaid'));
  for (let i = 0; i < 100 && mermaids.some(m => !m.querySelector('svg')); i++) await wait(100);
  const plots = Array.from(document.querySelectorAll('.plotly-graph-div'));
  for (let i = 0; i < 100 && plots.some(p => !p.querySelector('.main-svg')); i++) await wait(100);
  const math = Array.from(document.querySelectorAll('span.math, div.math'));
  return {
    plots: plots.length,
    plots_without_traces: plots.filter(p => !(p.data && p.data.length && p.querySelector('.main-svg'))).map(p => p.id),
    math: math.length,
    math_not_typeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
    mermaid: mermaids.length,
    mermaid_not_svg: mermaids.filter(m => !m.querySelector('svg')).map(m => m.textContent.slice(0, 60)),
    mathjax_scripts: Array.from(document.scripts).filter(s => /mathjax/i.test(s.src)).length,
  };
}"""

MIN_MERMAID_PX = 11.5

MEASURE = r"""async () => {
  const wait = (ms) => new Promise(r => setTimeout(r, ms));
  for (let i = 0; i < 100 && window.MathJax && !(MathJax.startup && MathJax.startup.promise); i++) await wait(100);
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const mermaids = Array.from(document.querySelectorAll('pre.mermaid'));
  for (let i = 0; i < 100 && mermaids.some(m => !m.querySelector('svg')); i++) await wait(100);
  const plots = Array.from(document.querySelectorAll('.plotly-graph-div'));
  for (let i = 0; i < 100 && plots.some(p => !p.querySelector('.main-svg')); i++) await wait(100);
  await wait(300);
  const main = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const edge = main.getBoundingClientRect();
  const short = (el) => (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 70);
  const figName = (p) => String((p.layout && p.layout.title && (p.layout.title.text || p.layout.title))
                                || `figure ${p.id.slice(0, 8)}`).replace(/<br>/g, ' ').slice(0, 60);
  const overflowX = (el) => getComputedStyle(el).overflowX;
  const scroller = (el) => {
    for (let a = el.parentElement; a && a !== main; a = a.parentElement) {
      const o = overflowX(a); if (o === 'auto' || o === 'scroll') return a;
    }
    return null;
  };
  const out = {cut: [], wide_math: [], wide_figures: [], hidden_columns: [], unwrapped_sentences: [],
               small_mermaid: [], untitled_axes: [], cut_titles: [], overlapping_labels: [], control_chars: [],
               stand_in_without_notice: []};

  // 1. past the right (or left) edge of the column, outside any scroll container: cut for the reader
  const reported = new Set();
  for (const el of main.querySelectorAll('*')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    const r = el.getBoundingClientRect();
    if (!r.width || !r.height || (r.right <= edge.right + 1 && r.left >= edge.left - 1)) continue;
    if (getComputedStyle(el).position === 'fixed' || scroller(el)) continue;
    let p = el.parentElement, inside = false;
    for (; p && p !== main; p = p.parentElement) if (reported.has(p)) { inside = true; break; }
    reported.add(el);
    const past = Math.round(r.right - edge.right);
    if (!inside) out.cut.push(`${el.tagName.toLowerCase()} ${past} px past the edge: ${short(el)}`);
  }
  // display equations and figures wider than the column (they scroll, and a reader sees a part)
  for (const m of main.querySelectorAll('mjx-container[display="true"]'))
    if (m.scrollWidth > m.clientWidth + 2 || m.getBoundingClientRect().width > edge.width + 2)
      out.wide_math.push(`${m.scrollWidth - m.clientWidth} px: ${short(m)}`);
  for (const p of plots) {
    const w = p.getBoundingClientRect().width;
    if (w > edge.width + 2)
      out.wide_figures.push(`${Math.round(w)} px wide in a ${Math.round(edge.width)} px column: ${figName(p)}`);
  }
  // a column of a table that its scroll container hides, where the page's text names that column
  const prose = Array.from(main.querySelectorAll('p, li, dd, figcaption')).filter(e => !e.closest('.cell_output, .cell_input, pre, table'))
    .map(e => e.textContent).join(' \n ').toLowerCase();
  const norm = (s) => s.toLowerCase().replace(/[^a-z0-9%@]+/g, '');
  const named = new Set();
  for (const m of prose.matchAll(/["“'`‘]([^"”'`’\n]{2,40})["”'`’]\s+columns?\b/g)) named.add(norm(m[1]));
  for (const m of prose.matchAll(/\bcolumns?\s+["“'`‘]([^"”'`’\n]{2,40})["”'`’]/g)) named.add(norm(m[1]));
  for (const t of main.querySelectorAll('table')) {
    const box = scroller(t) || (overflowX(t) !== 'visible' ? t : null);
    if (!box || box.scrollWidth <= box.clientWidth + 1) continue;
    const right = box.getBoundingClientRect().right;
    for (const th of t.querySelectorAll('thead th')) {
      const name = th.textContent.trim(); const key = norm(name);
      if (!key || th.getBoundingClientRect().right <= right + 1) continue;
      if ([...named].some(n => n.length >= 3 && (key.includes(n) || n.includes(key))))
        out.hidden_columns.push(`column "${name}" (named in the text) is hidden beyond the right edge of its table`);
    }
  }
  // 2. printed sentences that run past the right edge (their output scrolls instead of wrapping)
  for (const pre of main.querySelectorAll('.cell_output .output.stream pre')) {
    if (pre.scrollWidth <= pre.clientWidth + 2) continue;
    const font = parseFloat(getComputedStyle(pre).fontSize) || 14;
    const fits = Math.floor(pre.clientWidth / (0.6 * font));
    const sentences = pre.textContent.split('\n').filter(l => l.length > fits && / [a-z]{2,} [a-z]{2,} /i.test(l) && !/\S {3,}\S.* {3,}\S/.test(l));
    if (sentences.length) out.unwrapped_sentences.push(`${sentences.length} line(s) beyond the edge, e.g. "${sentences[0].slice(0, 90)}…"`);
  }
  // 3. mermaid text size on screen
  for (const m of mermaids) {
    const svg = m.querySelector('svg'); if (!svg) continue;
    let smallest = Infinity;
    for (const t of svg.querySelectorAll('foreignObject div, foreignObject span, text')) {
      if (!t.textContent.trim() || !t.getBoundingClientRect().height) continue;
      const holder = t.closest('foreignObject') || t;
      const ctm = holder.getScreenCTM();
      smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * (ctm ? Math.hypot(ctm.a, ctm.b) : 1));
    }
    if (smallest < __MIN_PX__) out.small_mermaid.push(`text ${smallest.toFixed(1)} px: ${short(m).replace(/#mermaid[^}]*}/, '').slice(0, 50)}`);
  }
  // 4. plotly figures: axis titles, titles that fit, labels that do not overlap
  const EXEMPT = new Set(['heatmap', 'image', 'table', 'histogram2d', 'pie', 'sunburst', 'treemap']);
  for (const p of plots) {
    const L = p._fullLayout; if (!L) continue;
    const name = figName(p);
    const types = {};
    for (const d of p._fullData || []) {
      if (d.visible === false || !d.xaxis) continue;
      const key = d.xaxis + d.yaxis; (types[key] = types[key] || []).push(d.type);
    }
    for (const [key, ts] of Object.entries(types)) {
      if (ts.every(t => EXEMPT.has(t))) continue;
      for (const id of key.match(/[xy]\d*/g)) {
        const ax = L[id[0] + 'axis' + id.slice(1)];
        if (!ax || ax.visible === false || ax.showticklabels === false) continue;
        const title = ax.title && ax.title.text;   // plotly fills an untitled axis with "Click to enter … title"
        if (!title || !String(title).trim() || /^Click to enter/.test(title))
          out.untitled_axes.push(`${name}: ${id}-axis has no title`);
      }
    }
    const title = p.querySelector('.gtitle');
    if (title) {      // inside the figure on every side: plotly cuts a long title at the edge, a tall one at the top
      const tr = title.getBoundingClientRect(), pr = p.getBoundingClientRect();
      if (tr.width && (tr.left < pr.left - 1 || tr.right > pr.right + 1 || tr.top < pr.top - 1)) out.cut_titles.push(name);
    }
    const labels = Array.from(p.querySelectorAll('.textpoint text'))
      .map(t => ({t: t.textContent, r: t.getBoundingClientRect()})).filter(x => x.r.width);
    for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) {
      const a = labels[i].r, b = labels[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 2 && h > 2) out.overlapping_labels.push(`${name}: "${labels[i].t}" over "${labels[j].t}"`);
    }
    const pr = p.getBoundingClientRect();
    for (const x of labels)
      if (x.r.left < pr.left - 1 || x.r.right > pr.right + 1) out.overlapping_labels.push(`${name}: "${x.t}" cut at the figure's edge`);
  }
  // 5. control characters in the page's text (a backspace is drawn as a box)
  const walk = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());)
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/.test(n.nodeValue)) out.control_chars.push(JSON.stringify(n.nodeValue.slice(0, 50)));
  // 6. a random stand-in said in an output needs the visible note
  const outputs = Array.from(main.querySelectorAll('.cell_output')).map(o => o.textContent).join('\n');
  if (/replaced by a tiny randomly initialised|RANDOM weights \(not a pretrained result\)/.test(outputs) && !main.querySelector('.labkit-weights-notice'))
    out.stand_in_without_notice.push('an output says a model is a random stand-in, and the page shows no weights notice');
  return out;
}""".replace("__MIN_PX__", str(MIN_MERMAID_PX))
