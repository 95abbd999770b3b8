/** The demo page's stylesheet, inlined into the page (no network round trip, works offline). */
export const STYLES = `
:root{--bg:#f6f7f9;--fg:#15181d;--muted:#5b6472;--card:#fff;--line:#d8dde4;--accent:#1f5fd1;--accent-fg:#fff;
--bar:#2f6fe0;--track:#e7ebf1;--warn-bg:#fff4d6;--warn-fg:#6b4700;--ok-bg:#dff5e6;--ok-fg:#14532d;--err-bg:#fde8e8;--err-fg:#8a1010;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;line-height:1.45;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--fg:#e8ebf0;--muted:#a3acb9;--card:#1a1e24;--line:#323a45;--accent:#6d9cf5;
--accent-fg:#0b1020;--bar:#6d9cf5;--track:#2a313b;--warn-bg:#3a2e0a;--warn-fg:#ffd98a;--ok-bg:#0f3320;--ok-fg:#a6f0c0;--err-bg:#3d1414;--err-fg:#ffb4b4}}
*{box-sizing:border-box}
[hidden]{display:none!important}
body{margin:0;background:var(--bg);color:var(--fg)}
header,main{max-width:1100px;margin:0 auto;padding:0 1rem}
header{padding-top:1.25rem}
h1{margin:0;font-size:1.6rem}
h2{margin:0 0 .75rem;font-size:1.2rem}
h3{margin:0 0 .5rem;font-size:1rem}
header p{margin:.25rem 0 .5rem;color:var(--muted)}
nav a{margin-right:1rem}
a{color:var(--accent)}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:1rem 1.25rem;margin:1rem 0}
.grid{display:grid;grid-template-columns:minmax(260px,340px) 1fr;gap:1.5rem}
@media (max-width:760px){.grid{grid-template-columns:1fr}}
label{display:block;font-weight:600;margin:.6rem 0 .25rem}
select,input[type=number],input[type=url],input[type=password]{font:inherit;color:inherit;background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.4rem .5rem;width:100%}
.apikey{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;font-size:.9rem;margin:.25rem 0}
.apikey label{margin:0}
.apikey input[type=password]{width:22rem;max-width:100%}
input[type=number]{width:6rem}
button,.btn{font:inherit;display:inline-block;border:1px solid var(--accent);background:var(--accent);color:var(--accent-fg);border-radius:6px;padding:.4rem .8rem;cursor:pointer;font-weight:600;margin:0}
button.secondary,.btn{background:transparent;color:var(--accent)}
button:disabled{opacity:.45;cursor:not-allowed}
:focus-visible,.sr-only:focus-visible+label{outline:3px solid var(--accent);outline-offset:2px}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.row{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.row input[type=url]{flex:1;min-width:10rem}
.drop{display:block;border:2px dashed var(--line);border-radius:10px;padding:1.4rem 1rem;text-align:center;cursor:pointer;font-weight:400;margin:.9rem 0}
.drop strong{display:block;font-size:1.05rem}
.drop span{color:var(--muted);font-size:.9rem}
.drop.over{border-color:var(--accent);background:var(--track)}
.muted{color:var(--muted)}
.model-card{font-size:.9rem;margin-top:.5rem}
.model-card dl{display:grid;grid-template-columns:auto 1fr;gap:.1rem .75rem;margin:.4rem 0 0}
.model-card dt{color:var(--muted)}
.model-card dd{margin:0;font-variant-numeric:tabular-nums}
.model-card summary{cursor:pointer;color:var(--accent);margin-top:.4rem}
.model-card details p{margin:.3rem 0;color:var(--muted)}
.badge{display:inline-block;border-radius:999px;padding:.1rem .6rem;font-size:.85rem;font-weight:600}
.trained{background:var(--ok-bg);color:var(--ok-fg)}
.untrained{background:var(--warn-bg);color:var(--warn-fg)}
.hit{background:var(--ok-bg);color:var(--ok-fg)}
.miss{background:var(--track);color:var(--fg)}
.err{background:var(--err-bg);color:var(--err-fg);border-radius:6px;padding:.5rem .75rem;margin:.5rem 0;overflow-wrap:anywhere}
.err .msg{display:block;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9rem;white-space:pre-wrap}
.notice{background:var(--warn-bg);color:var(--warn-fg);border-radius:6px;padding:.5rem .75rem;margin:.5rem 0;font-size:.9rem}
.result{display:grid;grid-template-columns:minmax(0,220px) 1fr;gap:1.25rem;align-items:start}
@media (max-width:560px){.result{grid-template-columns:1fr}}
figure{margin:0}
figure img{width:100%;height:auto;max-height:260px;object-fit:contain;border-radius:8px;border:1px solid var(--line);display:block;background:var(--track)}
figcaption{font-size:.85rem;color:var(--muted);margin-top:.35rem;overflow-wrap:anywhere}
.chart{list-style:none;padding:0;margin:.25rem 0 .75rem}
.chart li{display:grid;grid-template-columns:minmax(7rem,13rem) 1fr 4.5rem;gap:.6rem;align-items:center;margin:.3rem 0}
.chart .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.chart .track{height:1rem;background:var(--track);border-radius:4px;overflow:hidden}
.chart .fill,.tbar .fill,.progress .fill{height:100%;background:var(--bar);width:0}
.chart .fill{min-width:2px}
.chart .score{text-align:right;font-variant-numeric:tabular-nums}
.scale{font-size:.8rem;color:var(--muted);margin:-.4rem 0 .6rem}
table{border-collapse:collapse;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.2rem .75rem .2rem 0;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right}
.tbar{width:8rem;height:.6rem;background:var(--track);border-radius:3px;overflow:hidden}
.meta{display:flex;gap:.5rem;flex-wrap:wrap;align-items:center;margin:.25rem 0 .75rem}
.progress{height:1.1rem;background:var(--track);border-radius:6px;overflow:hidden;margin:.6rem 0 .25rem}
.progress .fill{transition:width .3s}
@media (prefers-reduced-motion:reduce){.progress .fill{transition:none}}
#bulk-results{margin-top:.75rem;width:100%}
caption{text-align:left;font-weight:600;padding:.25rem 0}
`;
