"""A dataset's ``describe()`` dict as text: `tfrec data describe` and the demo's opening."""

from __future__ import annotations


def format_summary(s: dict) -> str:
    """A human-readable dataset summary (the `make demo` opening)."""
    label = "  [SYNTHETIC DATA]" if s.get("synthetic") else ""
    lines = [
        f"Dataset {s['name']}{label}  ({s.get('source', '')})",
        f"  ratings: {s['n_ratings']:,}   users: {s['n_users']:,}   items rated: {s['n_items']:,}"
        f"   catalog: {s['n_catalog_items']:,}",
    ]
    if s.get("rating_mean") is None:
        lines.append(f"  sparsity: {s['sparsity']:.4f}   implicit feedback (no rating column)")
    else:
        lines += [f"  sparsity: {s['sparsity']:.4f}   mean rating: {s['rating_mean']:.3f}", "  rating histogram:"]
    total = max(s["n_ratings"], 1)
    for rating, count in s["rating_histogram"].items():
        bar = "#" * int(round(50 * count / total))
        lines.append(f"    {rating:>4}  {count:>8,}  {bar}")
    if s.get("first_timestamp") is None:
        lines.append("  no timestamps (no time order)")
    if "top_genres" in s:
        lines.append("  top genres (by ratings):")
        for genre, count in s["top_genres"].items():
            lines.append(f"    {genre:<12} {count:>8,}")
    for name, f in (s.get("features") or {}).items():  # your own data: the schema's features
        if "top" in f:
            detail = ", ".join(f"{k} {v:,}" for k, v in f["top"].items())
        elif "mean" in f:
            mean = "n/a" if f["mean"] is None else f"{f['mean']:.3f}"
            detail = f"mean {mean}, {f['missing']:,} missing"
        else:
            detail = f"{f.get('empty', 0):,} empty"
        lines.append(f"  {f['side']} feature {name} ({f['type']}): {detail}")
    return "\n".join(lines)
