"""Face engine: detect, track, align, embed, swap, enhance, blend."""
