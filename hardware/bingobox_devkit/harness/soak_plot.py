"""The soak's curves as one SVG (no plotting library: a few polylines): resident memory, open fds and threads per
process, the journal and its WAL, and the exits' latency — over the run's hours."""

from __future__ import annotations

from html import escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 190, 70, 170, 26, 30
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


def _panel(y0: int, title: str, unit: str, lines: dict[str, list[tuple[float, float]]], t_end: float) -> str:
    pts = [v for line in lines.values() for _, v in line]
    top = max(pts) * 1.1 if pts and max(pts) > 0 else 1.0
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    hours = max(t_end / 3600, 1e-6)

    def xy(t: float, v: float) -> str:
        return f"{PAD_L + pw * (t / 3600) / hours:.1f},{y0 + PAD_T + ph * (1 - v / top):.1f}"

    out = [f'<text x="{PAD_L}" y="{y0 + 16}" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{PAD_L}" y="{y0 + PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for frac in (0, 0.5, 1):
        y = y0 + PAD_T + ph * (1 - frac)
        out.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
                   f'{top * frac:.3g} {escape(unit)}</text>')
    for h in range(int(hours) + 1):
        x = PAD_L + pw * h / hours
        out.append(f'<line x1="{x:.1f}" y1="{y0 + PAD_T}" x2="{x:.1f}" y2="{y0 + PAD_T + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y0 + PAD_T + ph + 14}" font-size="11" text-anchor="middle">{h} h</text>')
    for i, (name, line) in enumerate(sorted(lines.items())):
        if not line:
            continue
        color = COLORS[i % len(COLORS)]
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="'
                   + " ".join(xy(t, v) for t, v in line) + '"/>')
        out.append(f'<text x="{W - PAD_R + 8}" y="{y0 + PAD_T + 12 + 14 * i}" font-size="11" fill="{color}">'
                   f'{escape(name)}</text>')
    return "\n".join(out)


def svg(samples: list[dict], latency: list[tuple[float, str, float]], t0: float, args) -> str:
    t_end = samples[-1]["t"] if samples else 1.0
    names = sorted({n for s in samples for n in s["procs"]})

    def per_proc(key: str) -> dict[str, list[tuple[float, float]]]:
        return {n: [(s["t"], s["procs"][n][key]) for s in samples if n in s["procs"]] for n in names}

    panels = [("resident memory per process", "MiB", per_proc("rss_mib")),
              ("open file descriptors per process", "", per_proc("fds")),
              ("threads per process", "", per_proc("threads")),
              ("the journal and its WAL; the gateway's database (the ledger: it keeps growing by design)", "MiB",
               {k: [(s["t"], s[k]) for s in samples] for k in ("journal_mib", "wal_mib", "gateway_db_mib")}),
              ("entry and exit latency (each visit)", "ms",
               {p: [(t - t0, ms) for t, q, ms in latency if q == p] for p in ("entry", "exit")})]
    body = "\n".join(_panel(i * H, *p, t_end) for i, p in enumerate(panels))
    title = (f"bingobox soak: {args.hours:g} h, a shopper every {args.every_s:g} s, faults: {args.faults}, "
             f"journal retention {args.keep_visits_days:g} days")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H * len(panels) + 24}" '
            f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
            f'<text x="10" y="{H * len(panels) + 16}" font-size="11" fill="#555">{escape(title)}</text>\n'
            f'{body}\n</svg>\n')
